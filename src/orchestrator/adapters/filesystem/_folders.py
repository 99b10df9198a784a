"""Listing and creating folders under the root (blocking; the workspace runs them in a thread).

A listing is sorted folders first, then by name (case-insensitively, ties by
the exact name), and cut into pages of :data:`~orchestrator.domain.commands.PAGE_SIZE`.
The cursor of the next page is the sort key of the last entry returned,
``"<0 for folders, 1 otherwise>/<name>"``, so entries created or deleted
between two pages neither shift nor repeat the rest. Only the entries of the
page are ``lstat``-ed. Names that are not valid UTF-8 cannot travel as text
and are left out.
"""

from __future__ import annotations

import bisect
import os
import stat
from datetime import UTC, datetime

from orchestrator.adapters.filesystem._paths import Resolved, Root, label, os_failure
from orchestrator.domain.commands import (
    BAD_CURSOR,
    PAGE_SIZE,
    CommandResult,
    DirEntry,
    EntryKind,
    validate_cursor,
    validate_new_folder,
)
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound
from orchestrator.domain.text import is_text

SortKey = tuple[int, str, str]


def _key(rank: int, name: str) -> SortKey:
    return (rank, name.casefold(), name)


def _after(cursor: str | None) -> SortKey | None:
    cursor = validate_cursor(cursor)
    if cursor is None:
        return None
    rank, slash, name = cursor.partition("/")
    if rank not in ("0", "1") or not slash or not name or "/" in name:
        raise InvalidInput(BAD_CURSOR)
    return _key(int(rank), name)


def _entry(folder: str, name: str) -> DirEntry | None:
    path = os.path.join(folder, name)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None  # deleted since the folder was read
    modified = datetime.fromtimestamp(info.st_mtime, UTC)
    modified = modified.replace(microsecond=modified.microsecond // 1000 * 1000)
    if stat.S_ISDIR(info.st_mode):
        is_repo = os.path.lexists(os.path.join(path, ".git"))
        return DirEntry(name, EntryKind.DIR, None, modified, is_repo)
    if stat.S_ISLNK(info.st_mode):
        kind = EntryKind.SYMLINK
    elif stat.S_ISREG(info.st_mode):
        kind = EntryKind.FILE
    else:
        kind = EntryKind.OTHER
    return DirEntry(name, kind, info.st_size, modified)


def _existing_folder(place: Resolved) -> None:
    if not os.path.exists(place.real):
        raise NotFound(f"There is no folder {label(place.clean)} under the root.")
    if not os.path.isdir(place.real):
        raise InvalidInput(f"{label(place.clean, start=True)} is a file, not a folder.")


def list_dir(root: Root, path: str, cursor: str | None) -> CommandResult:
    """One page of the folder at ``path``."""
    place = root.resolve(path)
    after = _after(cursor)
    _existing_folder(place)
    keys: list[SortKey] = []
    try:
        with os.scandir(place.real) as found:
            for item in found:
                if is_text(item.name):
                    rank = 0 if item.is_dir(follow_symlinks=False) else 1
                    keys.append(_key(rank, item.name))
    except OSError as exc:
        raise os_failure("read", place.clean, exc) from exc
    keys.sort()
    start = 0 if after is None else bisect.bisect_right(keys, after)
    page = keys[start : start + PAGE_SIZE]
    entries = [e for e in (_entry(str(place.real), k[2]) for k in page) if e is not None]
    more = start + PAGE_SIZE < len(keys)
    next_cursor = f"{page[-1][0]}/{page[-1][2]}" if more and page else None
    return CommandResult(place.clean, tuple(entries), len(keys), next_cursor)


def make_dir(root: Root, path: str, parents: bool) -> CommandResult:
    """Create the folder at ``path``; with ``parents`` like ``mkdir -p``."""
    place = root.resolve(validate_new_folder(path))
    parent_clean = os.path.dirname(place.clean)
    if os.path.lexists(place.lexical):
        if parents and os.path.isdir(place.real):
            return CommandResult(place.clean)
        if os.path.isdir(place.real):
            raise Conflict(f"A folder named {label(place.clean)} already exists.")
        raise Conflict(f"{label(place.clean, start=True)} already exists and is not a folder.")
    parent = root.resolve(parent_clean)
    if not parents and not os.path.isdir(parent.real):
        raise NotFound(
            f"The folder {label(parent_clean)} does not exist; create it first"
            " or allow creating the missing folders."
        )
    try:
        if parents:
            os.makedirs(place.real, exist_ok=True)
        else:
            os.mkdir(place.real)
    except FileExistsError as exc:
        raise Conflict(f"{label(place.clean, start=True)} already exists.") from exc
    except NotADirectoryError as exc:
        raise Conflict(f"A part of {label(place.clean)} is a file, not a folder.") from exc
    except OSError as exc:
        raise os_failure("create", place.clean, exc) from exc
    return CommandResult(place.clean)

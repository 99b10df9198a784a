"""Directory commands a user sends to a machine: list a folder, make one, clone into one.

A command is ``pending`` until the machine claims it (``running``) and ends
exactly once as ``done`` (with a result) or ``failed`` (with one sentence).
Commands are records in the backend, so one sent while the machine is offline
runs when it comes back. Paths are relative to the machine's root; this module
holds the lexical half of confinement (the machine resolves symlinks on disk);
which URLs may be cloned is :mod:`orchestrator.domain.git_url`.

The transitions are pure functions (``claim``, ``record_progress``, ``finish``,
``request_cancel``, ``recover``), so every backend applies the same rules.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from orchestrator.domain.errors import Conflict, InvalidInput, PathOutsideRoot
from orchestrator.domain.git_url import validate_git_url
from orchestrator.domain.ids import CommandId, MachineId, UserId
from orchestrator.domain.model import MAX_PATH_PART_LENGTH, normalize_relative_path
from orchestrator.domain.text import is_control, is_text

#: Entries of one ``list_dir`` page the machine returns; a result may hold at most MAX.
PAGE_SIZE = 500
MAX_PAGE_ENTRIES = 1000
MAX_CURSOR_LENGTH = 600
MAX_PROGRESS_LINE_LENGTH = 500
MAX_ERROR_LENGTH = 2000
#: Commands of one machine that may wait at once; more are refused.
MAX_PENDING_COMMANDS = 100
#: Finished commands kept per machine; older ones are deleted when a new one is created.
KEEP_FINISHED_COMMANDS = 200
#: How many commands ``list_commands`` returns, newest first.
LIST_COMMANDS_LIMIT = 100

CANCELLED = "The command was cancelled."
RESTARTED = "The machine restarted while this command ran."
ALREADY_FINISHED = "This command has already finished."

NEW_FOLDER_REQUIRED = "Choose a name for the new folder."
CLONE_TARGET_REQUIRED = "Choose the folder to clone into."
PATH_NOT_TEXT = "The path must be valid UTF-8 text."
NAME_CONTROL = "Folder names must not contain control characters."
NAME_BYTES = f"Each folder name must be at most {MAX_PATH_PART_LENGTH} bytes in UTF-8."
BAD_CURSOR = "The page cursor is not valid; list the folder again from its first page."


class CommandKind(enum.StrEnum):
    LIST_DIR = "list_dir"
    MKDIR = "mkdir"
    GIT_CLONE = "git_clone"


class CommandStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (CommandStatus.DONE, CommandStatus.FAILED)


class EntryKind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    #: Sockets, pipes and devices.
    OTHER = "other"


@attrs.frozen
class CommandArguments:
    """What a command acts on; each kind reads only its own fields.

    ``path`` is the folder to list (``""`` is the root), the folder to create,
    or the folder to clone into; ``cursor`` asks ``list_dir`` for a later page.
    """

    path: str = ""
    parents: bool = False
    url: str | None = None
    cursor: str | None = None


@attrs.frozen
class DirEntry:
    """One entry of a listed folder; ``size`` is None for folders."""

    name: str
    kind: EntryKind
    size: int | None = None
    modified: datetime | None = None
    is_git_repo: bool = False


@attrs.frozen
class CommandResult:
    """What a command produced: the folder it acted on and, for ``list_dir``, one page.

    Entries are sorted folders first, then by name; ``next_cursor`` asks for the
    following page and is None on the last one; ``total`` counts the whole folder.
    """

    path: str
    entries: tuple[DirEntry, ...] = ()
    total: int = 0
    next_cursor: str | None = None


@attrs.frozen
class CommandOutcome:
    """How a running command ends: its result, or one sentence of error (exactly one)."""

    result: CommandResult | None = None
    error: str | None = None


@attrs.frozen
class Command:
    command_id: CommandId
    machine_id: MachineId
    user_id: UserId
    kind: CommandKind
    arguments: CommandArguments
    status: CommandStatus
    created_at: datetime
    #: 0-100, and the last progress line the machine reported (git's own words).
    progress: int = 0
    progress_line: str | None = None
    result: CommandResult | None = None
    error: str | None = None
    #: The user asked to stop this running command; the machine has not acted yet.
    cancel_requested: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status.finished


# --- validation -------------------------------------------------------------------


def validate_path(path: str) -> str:
    """Return an existing folder's path, normalized; refuses ``..``, absolute paths, NUL."""
    if not is_text(path):
        raise InvalidInput(PATH_NOT_TEXT)
    clean = normalize_relative_path(path)
    if any(len(part.encode()) > MAX_PATH_PART_LENGTH for part in clean.split("/")):
        raise PathOutsideRoot(NAME_BYTES)
    return clean


def validate_new_folder(path: str, missing: str = NEW_FOLDER_REQUIRED) -> str:
    """Return the path of a folder to create, normalized; not the root, no control characters."""
    clean = validate_path(path)
    if not clean:
        raise InvalidInput(missing)
    if any(is_control(ch) for ch in clean):
        raise InvalidInput(NAME_CONTROL)
    return clean


def validate_cursor(cursor: str | None) -> str | None:
    """Return a page cursor if it can be one (bounded text without NUL)."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_LENGTH or "\x00" in cursor or not is_text(cursor):
        raise InvalidInput(BAD_CURSOR)
    return cursor


def parse_kind(raw: str) -> CommandKind:
    """The command kind named ``raw``."""
    try:
        return CommandKind(raw)
    except ValueError as exc:
        kinds = ", ".join(kind.value for kind in CommandKind)
        raise InvalidInput(f"The command kind must be one of: {kinds}.") from exc


def validate_arguments(kind: CommandKind, arguments: CommandArguments) -> CommandArguments:
    """The arguments ``kind`` reads, checked and normalized; the other fields are dropped."""
    kind = parse_kind(kind)
    if kind is CommandKind.LIST_DIR:
        return CommandArguments(
            path=validate_path(arguments.path), cursor=validate_cursor(arguments.cursor)
        )
    if kind is CommandKind.MKDIR:
        return CommandArguments(
            path=validate_new_folder(arguments.path), parents=bool(arguments.parents)
        )
    return CommandArguments(
        path=validate_new_folder(arguments.path, CLONE_TARGET_REQUIRED),
        url=validate_git_url(arguments.url or ""),
    )


def _check_entry(entry: DirEntry) -> None:
    name = entry.name
    if not name or name in (".", "..") or "/" in name or "\x00" in name or not is_text(name):
        raise InvalidInput("An entry name of a listing is not a valid file name.")
    if len(name.encode()) > MAX_PATH_PART_LENGTH:
        raise InvalidInput(NAME_BYTES)
    if entry.size is not None and entry.size < 0:
        raise InvalidInput("An entry size of a listing must not be negative.")


def validate_result(kind: CommandKind, result: CommandResult) -> CommandResult:
    """Return ``result`` if it fits a command of ``kind``: a page for list_dir, a path otherwise."""
    validate_path(result.path)
    if kind is not CommandKind.LIST_DIR and (result.entries or result.next_cursor):
        raise InvalidInput("Only a list_dir result has entries.")
    if len(result.entries) > MAX_PAGE_ENTRIES:
        raise InvalidInput(f"A listing page must have at most {MAX_PAGE_ENTRIES} entries.")
    for entry in result.entries:
        _check_entry(entry)
    if result.total < len(result.entries):
        raise InvalidInput("A listing's total must count at least the entries it holds.")
    validate_cursor(result.next_cursor)
    return result


def validate_progress(progress: int, line: str) -> tuple[int, str]:
    """Check a progress report: a whole percentage 0-100 and a bounded line."""
    if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
        raise InvalidInput("Progress must be a whole number from 0 to 100.")
    if len(line) > MAX_PROGRESS_LINE_LENGTH or not is_text(line):
        raise InvalidInput(
            f"A progress line must be text of at most {MAX_PROGRESS_LINE_LENGTH} characters."
        )
    return progress, line


def validate_error(error: str) -> str:
    """Check why a command failed: one non-empty, bounded sentence."""
    if not error.strip() or len(error) > MAX_ERROR_LENGTH or not is_text(error):
        raise InvalidInput(f"A command's error must be text of 1-{MAX_ERROR_LENGTH} characters.")
    return error


# --- transitions --------------------------------------------------------------------


def claim(command: Command, now: datetime) -> Command:
    """The machine takes a pending command: it becomes ``running``."""
    if command.finished:
        raise Conflict(ALREADY_FINISHED)
    if command.status is not CommandStatus.PENDING:
        raise Conflict("This command has already been claimed.")
    return attrs.evolve(command, status=CommandStatus.RUNNING, started_at=now)


def _ensure_running(command: Command) -> Command:
    if command.finished:
        raise Conflict(ALREADY_FINISHED)
    if command.status is not CommandStatus.RUNNING:
        raise Conflict("This command has not been claimed yet.")
    return command


def record_progress(command: Command, progress: int, line: str) -> Command:
    """A running command reports how far it got."""
    progress, line = validate_progress(progress, line)
    return attrs.evolve(_ensure_running(command), progress=progress, progress_line=line or None)


def finish(
    command: Command, now: datetime, result: CommandResult | None, error: str | None
) -> Command:
    """End a running command: ``done`` with its result, or ``failed`` with one sentence."""
    if (result is None) == (error is None):
        raise InvalidInput("Finish a command with either a result or an error.")
    _ensure_running(command)
    if result is not None:
        return attrs.evolve(
            command,
            status=CommandStatus.DONE,
            result=validate_result(command.kind, result),
            progress=100,
            finished_at=now,
        )
    return attrs.evolve(
        command, status=CommandStatus.FAILED, error=validate_error(error or ""), finished_at=now
    )


def _fail(command: Command, now: datetime, error: str) -> Command:
    return attrs.evolve(command, status=CommandStatus.FAILED, error=error, finished_at=now)


def request_cancel(command: Command, now: datetime) -> Command:
    """The owner cancels: a pending command fails at once, a running one is asked to stop."""
    if command.finished:
        raise Conflict(ALREADY_FINISHED)
    if command.status is CommandStatus.PENDING:
        return _fail(command, now, CANCELLED)
    return attrs.evolve(command, cancel_requested=True)


def recover(command: Command, now: datetime) -> Command:
    """A command left ``running`` by a machine process that died, as its next start finds it.

    ``list_dir`` only reads, so it goes back to ``pending`` and runs again;
    ``mkdir`` and ``git_clone`` may have half happened, so they fail with
    :data:`RESTARTED` rather than run twice.
    """
    if command.status is not CommandStatus.RUNNING:
        return command
    if command.kind is CommandKind.LIST_DIR and not command.cancel_requested:
        return attrs.evolve(
            command,
            status=CommandStatus.PENDING,
            started_at=None,
            progress=0,
            progress_line=None,
        )
    return _fail(command, now, CANCELLED if command.cancel_requested else RESTARTED)

"""Pages of a long list, read with a cursor, the same way on every backend.

A list is read in pages: the first page without a cursor, each next one with
the cursor the previous page returned, until a page returns none
(``has_more`` false). A cursor names the list it belongs to (its kind and the
record whose list it is, e.g. a chat session) and the last item the previous
page returned, so the next page starts strictly after that item: an item added
meanwhile at the other end never shifts a page and no item is read twice.

Each page is bounded twice: by a number of items and by an estimate of their
size (:data:`PAGE_BYTES`), so a page of very long messages stays far under
what one backend call may read (Convex: 16 MiB). The first item is always
taken, so a list always moves on.

A cursor is opaque to its reader (base64url of a small JSON object); one that
cannot be read, or that belongs to another list, is :class:`InvalidInput` with
one sentence, and a list of someone else's is NotFound as ever.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Final, Generic, TypeVar

import attrs

from orchestrator.domain.chat import ChatMessage, ChatSession
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.jobs import Job

T = TypeVar("T")

#: Messages in one page of a session's history when the reader asks for no number.
MESSAGE_PAGE: Final = 50
#: The most items one page may hold, whatever the reader asks for.
MAX_PAGE: Final = 200
#: Items of other lists (sessions, jobs) in one page.
LIST_PAGE: Final = 100
#: The most machines one page may hold: each brings its workers' counts.
MACHINE_PAGE: Final = 20
#: Estimated bytes of the items of one page (the first item is always taken).
PAGE_BYTES: Final = 2 * 1024 * 1024
#: Estimated bytes of a record beside its long text.
RECORD_OVERHEAD: Final = 200

BAD_CURSOR: Final = "This page cursor is not valid. Load the list again from its first page."
OTHER_LIST: Final = (
    "This page cursor belongs to another list. Load the list again from its first page."
)

#: The kinds of list a cursor names: a session's messages, a user's machines and jobs.
MESSAGES: Final = "messages"
SESSIONS: Final = "sessions"
MACHINES: Final = "machines"
JOBS: Final = "jobs"

#: Longest cursor accepted: a list kind, two IDs and JSON punctuation, base64url.
MAX_CURSOR_LENGTH: Final = 1000


@attrs.frozen
class Page(Generic[T]):
    """Some items of a list, and the cursor of the page after them (None at the end)."""

    items: tuple[T, ...]
    cursor: str | None = None

    @property
    def has_more(self) -> bool:
        return self.cursor is not None


@attrs.frozen
class CursorPosition:
    """Where a page starts: after ``last_id`` in the ``kind`` list of ``scope``."""

    kind: str
    scope: str
    last_id: str


def encode_cursor(kind: str, scope: str, last_id: str) -> str:
    """The cursor of the page after ``last_id`` in the ``kind`` list of ``scope``."""
    raw = json.dumps({"k": kind, "s": scope, "l": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kind: str, scope: str) -> str | None:
    """The last item's ID a cursor of the ``kind`` list of ``scope`` names (None: first page)."""
    if cursor is None:
        return None
    position = _read(cursor)
    if position.kind != kind or position.scope != scope:
        raise InvalidInput(OTHER_LIST)
    return position.last_id


def _read(cursor: str) -> CursorPosition:
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise InvalidInput(BAD_CURSOR)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        found = json.loads(raw.decode())
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(BAD_CURSOR) from exc
    if not isinstance(found, dict) or set(found) != {"k", "s", "l"}:
        raise InvalidInput(BAD_CURSOR)
    fields = (found["k"], found["s"], found["l"])
    if not all(isinstance(f, str) and f for f in fields):
        raise InvalidInput(BAD_CURSOR)
    return CursorPosition(*fields)


def bad_limit(most: int = MAX_PAGE) -> str:
    """The sentence for a page size out of range."""
    return f"A page holds 1 to {most} items."


def page_limit(limit: int | None, default: int, most: int = MAX_PAGE) -> int:
    """The number of items a page asked for with ``limit`` holds (``default`` when None)."""
    if limit is None:
        return default
    if isinstance(limit, bool) or not 1 <= limit <= most:
        raise InvalidInput(bad_limit(most))
    return limit


def text_size(*texts: str | None) -> int:
    """The estimated stored size of a record holding ``texts``."""
    return RECORD_OVERHEAD + sum(len(t.encode("utf-8", "surrogatepass")) for t in texts if t)


def cut_page(
    candidates: Iterable[T], limit: int, size: Callable[[T], int], budget: int = PAGE_BYTES
) -> tuple[list[T], bool]:
    """The items of one page from ``candidates`` (in list order), and whether more follow.

    Takes items while the page holds fewer than ``limit`` and their sizes stay
    within ``budget`` (the first item always); more follow if a candidate was left.
    """
    taken: list[T] = []
    used = 0
    for item in candidates:
        cost = size(item)
        if len(taken) >= limit or (taken and used + cost > budget):
            return taken, True
        taken.append(item)
        used += cost
    return taken, False


def make_page(
    items: Sequence[T], more: bool, kind: str, scope: str, item_id: Callable[[T], str]
) -> Page[T]:
    """A page of ``items`` whose cursor (if ``more``) starts after its last item."""
    cursor = encode_cursor(kind, scope, item_id(items[-1])) if more and items else None
    return Page(tuple(items), cursor)


def message_size(message: ChatMessage) -> int:
    """The estimated stored size of a message (what a page's budget counts)."""
    return text_size(message.content, message.error)


def session_size(session: ChatSession) -> int:
    """The estimated stored size of a chat session (its title is its only long text)."""
    return text_size(session.title)


def job_size(job: Job) -> int:
    """The estimated stored size of a job (its prompt is its long text)."""
    return text_size(job.prompt, job.name)


def page_from_list(
    ordered: Sequence[T],
    after_id: str | None,
    limit: int,
    size: Callable[[T], int],
    item_id: Callable[[T], str],
) -> tuple[list[T], bool]:
    """One page of a whole list held in memory, after the item ``after_id`` (the fake's reads)."""
    start = 0
    if after_id is not None:
        ids = [item_id(item) for item in ordered]
        if after_id not in ids:
            raise InvalidInput(OTHER_LIST)
        start = ids.index(after_id) + 1
    return cut_page(ordered[start:], limit, size)

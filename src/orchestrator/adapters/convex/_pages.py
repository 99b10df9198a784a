"""How the Convex adapter reads a list one bounded page per call.

A paged query returns at most :data:`~orchestrator.domain.paging.MAX_PAGE` items
and about :data:`~orchestrator.domain.paging.PAGE_BYTES` of them
(``backend_convex/convex/lib/paging.ts``), so no call reads near Convex's
16 MiB whatever the list's size; the adapter reads page after page, so the
whole list comes back as on every other backend.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc
import attrs

from orchestrator.adapters.convex._transport import Args
from orchestrator.domain.paging import MAX_PAGE

#: One call of a query: its path and arguments.
Query = Callable[[str, Args], Awaitable[Any]]
#: The values of a query (path, arguments), now and after every change.
Watch = Callable[[str, Args], AsyncGenerator[Any, None]]
#: A page as it was read: the query's path, its arguments and what it returned.
Read = tuple[str, Args, Any]


class _Sequenced(Protocol):
    @property
    def sequence(self) -> int: ...


S = TypeVar("S", bound=_Sequenced)


async def follow_sequence(
    pages_after: Callable[[int], AsyncGenerator[list[S], None]], after_sequence: int
) -> AsyncGenerator[list[S], None]:
    """A cursor, not a snapshot: the watch of the page after the last item yielded.

    The first page is yielded even if empty; each later page moves the watch on.
    """
    last, first = after_sequence, True
    while True:
        pages = pages_after(last)
        async with aclosing(pages):
            async for page in pages:
                if page or first:
                    first = False
                    yield page
                if page:
                    last = page[-1].sequence
                    break
            else:
                return  # the backend closed


@attrs.frozen
class ListShape:
    """How a paged Convex query names its items, their IDs and its cursor argument."""

    key: str
    item_id: Callable[[Any], str]
    after_field: str
    limit: int


PERMISSION_LIST = ListShape(
    "permissions", lambda p: p["permissionId"], "afterPermissionId", MAX_PAGE
)
QUESTION_LIST = ListShape("questions", lambda q: q["questionId"], "afterQuestionId", MAX_PAGE)


def after(last_id: str | None, field: str = "afterMessageId") -> dict[str, str]:
    """The cursor argument of the page after ``last_id`` (none for the first page)."""
    return {} if last_id is None else {field: last_id}


async def read_pages(
    query: Query, path: str, shape: ListShape, args: Args, first: Any = None
) -> tuple[list[Any], list[Read]]:
    """Every item of a paged list (after the page ``first``, if given), a page per call,
    and the pages read for them."""
    found: list[Any] = [] if first is None else list(first[shape.key])
    more = True if first is None else bool(first["hasMore"])
    reads: list[Read] = []
    while more:
        last = shape.item_id(found[-1]) if found else None
        page_args = {**args, "limit": shape.limit, **after(last, shape.after_field)}
        page = await query(path, page_args)
        reads.append((path, page_args, page))
        found.extend(page[shape.key])
        more = bool(page["hasMore"]) and bool(page[shape.key])
    return found, reads


async def every(
    query: Query, path: str, shape: ListShape, args: Args, first: Any = None
) -> list[Any]:
    """Every item of a paged list (after the page ``first``, if given), a page per call."""
    return (await read_pages(query, path, shape, args, first))[0]


async def waiting_pages(query: Query, path: str, args: Args) -> list[Read]:
    """Every page of a waiting list (``lib/inbox.ts`` waitingPage) as it was read.

    Its pages go machine by machine, each handing back where the next starts.
    """
    reads: list[Read] = [(path, args, await query(path, args))]
    while reads[-1][2]["next"] is not None:
        page_args = {**args, "after": reads[-1][2]["next"]}
        reads.append((path, page_args, await query(path, page_args)))
    return reads


def waiting_items(reads: list[Read]) -> list[Any]:
    """The requests of a waiting list's pages, oldest first (as on every backend)."""
    found = [item for _, _, page in reads for item in page["waiting"]]
    return sorted(found, key=lambda w: float(w["request"]["createdAt"]))


async def every_waiting(query: Query, path: str, args: Args) -> list[Any]:
    """Every request of a waiting list, oldest first, a page per call."""
    return waiting_items(await waiting_pages(query, path, args))


async def watch_waiting(
    query: Query, watch: Watch, path: str, args: Args
) -> AsyncGenerator[list[Any], None]:
    """Every request of a waiting list, now and after every change of any of its pages."""
    while True:
        reads = await waiting_pages(query, path, args)
        yield waiting_items(reads)
        if not await changed(watch, reads):
            return  # the backend closed a watch


async def changed(watch: Watch, reads: list[Read]) -> bool:
    """Wait until one of the pages ``reads`` reads otherwise (True), or a watch ends (False).

    A watch's error is raised as it is, not inside an exception group.
    """
    outcome: bool | Exception = False

    async def follow(path: str, args: Args, seen: Any, group: anyio.abc.TaskGroup) -> None:
        nonlocal outcome
        try:
            async with aclosing(watch(path, args)) as values:
                async for value in values:
                    if value != seen:
                        outcome = True
                        break
        except Exception as exc:  # the first watch to fail ends them all
            outcome = exc
        group.cancel_scope.cancel()

    async with anyio.create_task_group() as group:
        for path, args, page in reads:
            group.start_soon(follow, path, args, page, group)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome

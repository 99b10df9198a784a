"""How the Convex adapter reads a list one bounded page per call.

A paged query returns at most :data:`~orchestrator.domain.paging.MAX_PAGE` items
and about :data:`~orchestrator.domain.paging.PAGE_BYTES` of them
(``backend_convex/convex/lib/paging.ts``), so no call reads near Convex's
16 MiB whatever the list's size; the adapter reads page after page, so the
whole list comes back as on every other backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from orchestrator.adapters.convex._transport import Args
from orchestrator.domain.paging import MAX_PAGE

#: One call of a query with the given arguments.
Query = Callable[[Args], Awaitable[Any]]


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


async def every(query: Query, shape: ListShape, args: Args, first: Any = None) -> list[Any]:
    """Every item of a paged list (after the page ``first``, if given), a page per call."""
    found: list[Any] = [] if first is None else list(first[shape.key])
    more = True if first is None else bool(first["hasMore"])
    while more:
        last = shape.item_id(found[-1]) if found else None
        page = await query({**args, "limit": shape.limit, **after(last, shape.after_field)})
        found.extend(page[shape.key])
        more = bool(page["hasMore"]) and bool(page[shape.key])
    return found


async def every_waiting(query: Query, args: Args, first: Any = None) -> list[Any]:
    """Every request of a waiting list (``lib/inbox.ts`` waitingPage), oldest first.

    Its pages go machine by machine, each handing back where the next starts.
    """
    page = await query(args) if first is None else first
    found = list(page["waiting"])
    while page["next"] is not None:
        page = await query({**args, "after": page["next"]})
        found.extend(page["waiting"])
    return sorted(found, key=lambda w: float(w["request"]["createdAt"]))

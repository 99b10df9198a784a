"""A sequence cursor over a change feed, for ``watch_chunks`` and ``watch_events``.

SQLite and the in-memory fake both follow a session's stream the same way:
after each wakeup, read what follows the last item yielded, a bounded page at
a time, until caught up. Only how they wake and read differs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Protocol, TypeVar


class _Sequenced(Protocol):
    @property
    def sequence(self) -> int: ...


S = TypeVar("S", bound=_Sequenced)


async def follow_cursor(
    wakeups: AsyncGenerator[None, None],
    read_after: Callable[[int], Awaitable[list[S]]],
    after_sequence: int,
    page: int | None = None,
) -> AsyncGenerator[list[S], None]:
    """A cursor, not a snapshot: the items after ``after_sequence``, then each new page.

    The first read is yielded even if empty; after that only pages with items. A
    full page (``page`` items) is followed at once by the next read; without
    ``page`` each read returns all there is.
    """
    last, first = after_sequence, True
    async with aclosing(wakeups):
        async for _ in wakeups:
            while True:
                found = await read_after(last)
                if found:
                    last = found[-1].sequence
                if found or first:
                    first = False
                    yield found
                if page is None or len(found) < page:
                    break

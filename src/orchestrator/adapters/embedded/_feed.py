"""A change feed: subscriptions that re-run their query after relevant commits.

Writers :meth:`ChangeFeed.publish` the topics a commit touched (for example
``("user", user_id)``); a subscription re-runs its query when one of its topics
moved, and yields only results that differ from the last one it yielded.
:meth:`ChangeFeed.publish_everything` wakes every subscription, for changes
whose topics are unknown (another process wrote to the database).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable
from contextlib import aclosing
from functools import partial
from typing import TypeVar

T = TypeVar("T")

Topic = Hashable


class ChangeFeed:
    """In-process notification of committed changes, by topic."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._versions: dict[Topic, int] = {}
        self._epoch = 0
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def publish(self, *topics: Topic) -> None:
        """Wake the subscriptions to any of ``topics``; call after the commit."""
        if not topics:
            return
        async with self._condition:
            for topic in topics:
                self._versions[topic] = self._versions.get(topic, 0) + 1
            self._condition.notify_all()

    async def publish_everything(self) -> None:
        """Wake every subscription, whatever its topics."""
        async with self._condition:
            self._epoch += 1
            self._condition.notify_all()

    async def close(self) -> None:
        """End every subscription; later ones end at once."""
        async with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _stamp(self, topics: tuple[Topic, ...]) -> tuple[int, ...]:
        return (self._epoch, *(self._versions.get(topic, 0) for topic in topics))

    def _moved(self, topics: tuple[Topic, ...], stamp: tuple[int, ...]) -> bool:
        return self._closed or self._stamp(topics) != stamp

    async def wakeups(self, topics: Iterable[Topic]) -> AsyncGenerator[None, None]:
        """Yield now, then once after each change to ``topics``; ends when the feed closes.

        The consumer reads the database between two yields; a commit racing
        with that read wakes it again, so nothing is missed.
        """
        keys = tuple(topics)
        if self._closed:
            return
        # Stamp before the consumer reads, so a commit during the read counts.
        stamp = self._stamp(keys)
        yield
        while True:
            async with self._condition:
                await self._condition.wait_for(partial(self._moved, keys, stamp))
                if self._closed:
                    return
                stamp = self._stamp(keys)
            yield

    async def watch(
        self, topics: Iterable[Topic], query: Callable[[], Awaitable[T]]
    ) -> AsyncGenerator[T, None]:
        """``query()`` now, then again after each change to ``topics`` that alters it.

        Errors of ``query`` propagate to the consumer; the subscription ends when
        the feed closes.
        """
        first, last = True, None
        async with aclosing(self.wakeups(topics)) as wakeups:
            async for _ in wakeups:
                current = await query()
                if first or current != last:
                    first, last = False, current
                    yield current

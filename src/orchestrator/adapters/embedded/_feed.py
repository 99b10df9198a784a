"""A change feed: subscriptions that re-run their query after relevant commits.

Writers :meth:`ChangeFeed.publish` the topics a commit touched (for example
``("user", user_id)``); only the subscriptions to one of those topics wake (an
index from topic to subscriptions, so a change to one chat session costs nothing
to the watchers of the others), re-run their query, and yield only results that
differ from the last one they yielded.
:meth:`ChangeFeed.publish_everything` wakes every subscription, for changes
whose topics are unknown (another process wrote to the database).
:attr:`ChangeFeed.wakes` counts the subscriptions woken, for tests and benchmarks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable
from contextlib import aclosing
from typing import TypeVar

T = TypeVar("T")

Topic = Hashable


class _Subscription:
    """One waiting consumer: its topics and the flag a matching change raises."""

    __slots__ = ("changed", "topics")

    def __init__(self, topics: tuple[Topic, ...]) -> None:
        self.topics = topics
        self.changed = asyncio.Event()


class ChangeFeed:
    """In-process notification of committed changes, by topic."""

    def __init__(self) -> None:
        self._by_topic: dict[Topic, set[_Subscription]] = {}
        self._all: set[_Subscription] = set()
        self._closed = False
        self.wakes = 0

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are open."""
        return len(self._all)

    def _wake(self, subscriptions: Iterable[_Subscription]) -> None:
        for subscription in subscriptions:
            if not subscription.changed.is_set():
                self.wakes += 1
                subscription.changed.set()

    async def publish(self, *topics: Topic) -> None:
        """Wake the subscriptions to any of ``topics``; call after the commit."""
        for topic in topics:
            self._wake(self._by_topic.get(topic, ()))

    async def publish_everything(self) -> None:
        """Wake every subscription, whatever its topics."""
        self._wake(self._all)

    async def close(self) -> None:
        """End every subscription; later ones end at once."""
        self._closed = True
        self._wake(self._all)

    def _subscribe(self, topics: tuple[Topic, ...]) -> _Subscription:
        subscription = _Subscription(topics)
        self._all.add(subscription)
        for topic in topics:
            self._by_topic.setdefault(topic, set()).add(subscription)
        return subscription

    def _unsubscribe(self, subscription: _Subscription) -> None:
        self._all.discard(subscription)
        for topic in subscription.topics:
            watchers = self._by_topic.get(topic)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._by_topic[topic]

    async def wakeups(self, topics: Iterable[Topic]) -> AsyncGenerator[None, None]:
        """Yield now, then once after each change to ``topics``; ends when the feed closes.

        The consumer reads the database between two yields; a commit racing
        with that read wakes it again, so nothing is missed.
        """
        if self._closed:
            return
        # Subscribed before the consumer reads, so a commit during the read counts.
        subscription = self._subscribe(tuple(topics))
        try:
            yield
            while True:
                await subscription.changed.wait()
                subscription.changed.clear()
                if self._closed:
                    return
                yield
        finally:
            self._unsubscribe(subscription)

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

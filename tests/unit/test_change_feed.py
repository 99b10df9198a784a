"""The embedded change feed wakes only the subscriptions whose topics a change touches."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager

import pytest

from orchestrator.adapters.embedded._feed import ChangeFeed

pytestmark = pytest.mark.anyio

SESSION_A = ("chunks", "session-a")
SESSION_B = ("chunks", "session-b")


@asynccontextmanager
async def watching_both_sessions(
    feed: ChangeFeed,
) -> AsyncIterator[tuple[AsyncGenerator[None, None], AsyncGenerator[None, None]]]:
    """A watcher of session A and one of session B, each past its first wake."""
    async with AsyncExitStack() as stack:
        watch_a = await stack.enter_async_context(aclosing(feed.wakeups([SESSION_A])))
        watch_b = await stack.enter_async_context(aclosing(feed.wakeups([SESSION_B])))
        await anext(watch_a)
        await anext(watch_b)
        yield watch_a, watch_b


async def test_a_change_to_one_session_does_not_wake_a_watcher_of_another() -> None:
    """Publishing session A's topic wakes A's watcher once and B's watcher never."""
    feed = ChangeFeed()
    async with watching_both_sessions(feed) as (watch_a, _watch_b):
        assert feed.subscriptions == 2
        await feed.publish(SESSION_A, ("user", "u1"))
        assert feed.wakes == 1
        await anext(watch_a)
        await feed.publish(SESSION_A)
        await feed.publish(("machine", "m1"))
        assert feed.wakes == 2
    assert feed.subscriptions == 0


async def test_changes_while_the_consumer_reads_wake_it_once_more() -> None:
    """Two commits during one read are one more wake, so nothing is missed or repeated."""
    feed = ChangeFeed()
    async with aclosing(feed.wakeups([SESSION_A])) as watch:
        await anext(watch)
        await feed.publish(SESSION_A)
        await feed.publish(SESSION_A)
        assert feed.wakes == 1
        await anext(watch)
        await feed.publish(SESSION_A)
        assert feed.wakes == 2


async def test_publish_everything_wakes_every_subscription_and_close_ends_them() -> None:
    """An unknown change wakes all watchers; closing ends them and later ones at once."""
    feed = ChangeFeed()
    async with watching_both_sessions(feed) as (watch_a, watch_b):
        await feed.publish_everything()
        assert feed.wakes == 2
        await anext(watch_a)
        await anext(watch_b)
        await feed.close()
        assert [item async for item in watch_a] == []
        assert [item async for item in watch_b] == []
    assert [item async for item in feed.wakeups([SESSION_A])] == []
    assert feed.subscriptions == 0


async def test_watch_yields_only_results_that_changed() -> None:
    """A wake whose query result is unchanged yields nothing new."""
    feed = ChangeFeed()
    results = iter([1, 1, 2])
    calls = 0

    async def query() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            await feed.publish(SESSION_A)  # a commit racing with this read
        return next(results)

    async with aclosing(feed.watch([SESSION_A], query)) as watch:
        assert await anext(watch) == 1
        await feed.publish(SESSION_A)
        assert await anext(watch) == 2
    assert calls == 3

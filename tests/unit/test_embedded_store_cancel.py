"""A transaction cancelled at any point by ``Task.cancel()`` leaves the shared connection usable.

aiohttp cancels a handler's task, and the server cancels its background tasks, with
asyncio's own ``Task.cancel()``, which an anyio shield does not hold back. The
statement the cancelled task was waiting for still runs in aiosqlite's thread; the
store must neither leave the connection inside a transaction (every later call would
fail) nor turn the cancellation into an error that a retry loop swallows (the task
would never end: ``orchestrator serve`` hung on SIGTERM this way).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from orchestrator.adapters.embedded._schema import connect
from orchestrator.adapters.embedded._store import Store

pytestmark = pytest.mark.anyio


async def _write(store: Store, value: int) -> None:
    async with store.transaction(write=True) as tx:
        await tx.run("INSERT INTO cancel_probe (value) VALUES (?)", value)
        tx.touch("probe")


async def _read(store: Store) -> int:
    async with store.transaction() as tx:
        row = await tx.one("SELECT count(*) FROM cancel_probe")
    assert row is not None
    return int(row[0])


async def test_a_transaction_cancelled_anywhere_ends_cancelled_and_leaves_the_connection_usable(
    tmp_path: Path,
) -> None:
    store = Store(await connect(tmp_path / "db.sqlite"))
    await store.db.execute("CREATE TABLE cancel_probe (value INTEGER)")
    finished = 0
    try:
        # Each round cancels a little later, so the cancellation lands on BEGIN, on the
        # statement, on COMMIT and after it, while aiosqlite's thread is still busy.
        for round_ in range(300):
            work = asyncio.create_task(_write(store, round_) if round_ % 2 else _read(store))
            for _ in range(round_ % 12):
                await asyncio.sleep(0)
            work.cancel()
            try:
                await work
                finished += 1
            except asyncio.CancelledError:
                pass
            # Anything but CancelledError (BackendUnavailable above all) fails the test here.
            assert not store.db.in_transaction, f"round {round_} left a transaction open"
            await _write(store, -1)
        assert await _read(store) >= 300
    finally:
        await store.close()


async def test_a_commit_that_lands_for_a_cancelled_task_still_wakes_its_watchers(
    tmp_path: Path,
) -> None:
    store = Store(await connect(tmp_path / "db.sqlite"))
    await store.db.execute("CREATE TABLE cancel_probe (value INTEGER)")
    try:
        for round_ in range(60):
            wakeups = store.feed.wakeups(["probe"])
            await anext(wakeups)
            before = await _read(store)
            work = asyncio.create_task(_write(store, round_))
            for _ in range(round_ % 12):
                await asyncio.sleep(0)
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            if await _read(store) > before:
                # The row is committed: the watcher must hear of it.
                await asyncio.wait_for(anext(wakeups), timeout=5)
            await wakeups.aclose()
    finally:
        await store.close()

"""One SQLite connection shared by coroutines: transactions, change topics, polling.

Every unit of work runs as one transaction under an ``asyncio.Lock`` (the
connection is shared), and the topics it touched are published to the change
feed only after ``COMMIT``. A background task polls ``PRAGMA data_version`` so
commits made by *another* process on the same file wake subscriptions too.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Hashable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite
import anyio
import attrs

from orchestrator.adapters.embedded._feed import ChangeFeed
from orchestrator.domain.errors import BackendUnavailable, NotFound

log = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.define
class Tx:
    """A transaction in progress; ``touch`` records which subscriptions to wake."""

    db: aiosqlite.Connection
    topics: set[Hashable] = attrs.Factory(set)

    # ``one`` and ``all`` are one call to aiosqlite's thread each (a cursor would be three:
    # execute, fetch, close); a statement of ``one`` returns one row (a key, an aggregate,
    # LIMIT 1), so fetching all its rows reads no more.

    async def one(self, sql: str, *params: Any) -> aiosqlite.Row | None:
        found = await self.db.execute_fetchall(sql, params)
        return next(iter(found), None)

    async def found(self, missing: str, sql: str, *params: Any) -> aiosqlite.Row:
        """The one row of ``sql``; NotFound(``missing``) if there is none."""
        row = await self.one(sql, *params)
        if row is None:
            raise NotFound(missing)
        return row

    async def all(self, sql: str, *params: Any) -> list[aiosqlite.Row]:
        return list(await self.db.execute_fetchall(sql, params))

    async def each(self, convert: Callable[[aiosqlite.Row], T], sql: str, *params: Any) -> list[T]:
        """The rows of ``sql``, each converted to a record by ``convert``."""
        return [convert(row) for row in await self.all(sql, *params)]

    async def run(self, sql: str, *params: Any) -> int:
        async with self.db.execute(sql, params) as cursor:
            return cursor.rowcount

    async def upsert(
        self, table: str, row: Mapping[str, Any], key: Collection[str], keep: Collection[str] = ()
    ) -> None:
        """Insert ``row`` (column -> value), or update the row with the same ``key`` columns.

        An update leaves the key and the ``keep`` columns (set once, on insert) as they are.
        """
        names = ", ".join(row)
        marks = ", ".join("?" * len(row))
        changed = [name for name in row if name not in key and name not in keep]
        updates = ", ".join(f"{name} = excluded.{name}" for name in changed)
        await self.run(
            f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 -- fixed names
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
            *row.values(),
        )

    def touch(self, *topics: Hashable) -> None:
        self.topics.update(topics)


def _raise(cancelled: asyncio.CancelledError | None) -> None:
    if cancelled is not None:
        raise cancelled


class Store:
    """Serialised transactions on one connection, plus the change feed they feed."""

    def __init__(self, db: aiosqlite.Connection, *, poll_interval: float = 0.5) -> None:
        self.db = db
        self.feed = ChangeFeed()
        self._lock = asyncio.Lock()
        self._poll_interval = poll_interval
        self._poller: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        """Start watching for commits by other processes."""
        self._poller = asyncio.create_task(self._poll_data_version(), name="sqlite-data-version")

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[Tx]:
        """One transaction; writes take the database's write lock at once.

        However the awaiting task is cancelled, the connection leaves this block outside
        any transaction, the cancellation reaches the caller as itself (never as an
        error a retry loop would swallow), and a commit that landed wakes its watchers.
        """
        if self._closed:
            raise BackendUnavailable("The backend is closed.")
        tx = Tx(self.db)
        committed = False
        try:
            async with self._lock:
                try:
                    _raise(await self._settled("BEGIN IMMEDIATE" if write else "BEGIN"))
                    yield tx
                    cancelled = await self._settled("COMMIT")
                    committed = not self.db.in_transaction
                    _raise(cancelled)
                except BaseException:
                    if self.db.in_transaction:
                        await self._settled("ROLLBACK")
                    raise
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(
                "The database is busy or cannot be written. Try again in a moment."
            ) from exc
        finally:
            if committed:
                await self.feed.publish(*tx.topics)

    async def _settled(self, sql: str) -> asyncio.CancelledError | None:
        """Run ``sql`` and wait until it has run, even if the awaiting task is cancelled.

        The statement runs in aiosqlite's thread whatever happens to the task that asked
        for it, and the connection's state is known only once it has. An anyio shield
        holds back cancel scopes but not asyncio's own ``Task.cancel()`` (aiohttp's and
        the server's background tasks use it): that one is caught here, the thread's
        queue is drained past the statement, and the cancellation is returned for the
        caller to raise once the connection is in a known state.
        """
        cancelled: asyncio.CancelledError | None = None
        with anyio.CancelScope(shield=True):
            try:
                await self.db.execute(sql)
                return None
            except asyncio.CancelledError as exc:
                cancelled = exc
            drained = False
            while not drained:
                try:
                    # aiosqlite runs one call at a time, in order: this one ends after ``sql``.
                    await self.db.execute_fetchall("SELECT 1")
                    drained = True
                except asyncio.CancelledError as exc:
                    cancelled = exc
        return cancelled

    async def _data_version(self) -> int:
        async with self._lock, self.db.execute("PRAGMA data_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def _poll_data_version(self) -> None:
        # data_version changes only when another connection commits.
        last = await self._data_version()
        while True:
            await anyio.sleep(self._poll_interval)
            try:
                current = await self._data_version()
            except (sqlite3.Error, ValueError):
                log.warning("Could not poll the database for changes.", exc_info=True)
                continue
            if current != last:
                last = current
                await self.feed.publish_everything()

    async def close(self) -> None:
        """Stop polling, end subscriptions and close the connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait([self._poller])
        await self.feed.close()
        async with self._lock:
            await self.db.close()

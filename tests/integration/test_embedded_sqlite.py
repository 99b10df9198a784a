"""The embedded backend on a real SQLite file: persistence, schema, hashing, processes."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import aiosqlite
import anyio
import pytest

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.embedded._schema import SCHEMA_VERSION, migrate, schema_version
from orchestrator.adapters.system import Argon2Hasher, RandomIds
from orchestrator.domain.errors import AuthenticationFailed, BackendUnavailable
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.ports import SecretHasher
from orchestrator.testing import FakeClock, PlainHasher

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def opened(
    path: Path | str, hasher: SecretHasher | None = None, poll_interval: float = 0.5
) -> AsyncIterator[SQLiteBackend]:
    backend = await open_backend(
        path,
        clock=FakeClock(),
        ids=RandomIds(),
        hasher=hasher or Argon2Hasher(fast=True),
        poll_interval=poll_interval,
    )
    try:
        yield backend
    finally:
        await backend.close()


def raw(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path)) as db:
        yield db


async def test_data_survives_reopen(tmp_path: Path) -> None:
    """Users, machines and workers written before closing are there after reopening."""
    path = tmp_path / "db.sqlite3"
    async with opened(path) as backend:
        user = await backend.create_user("alice", "hash")
        machine, token = await backend.create_machine(user.user_id, "laptop")
        worker = await backend.add_worker(user.user_id, machine.machine_id, "src", None)
    async with opened(path) as backend:
        assert await backend.get_user(user.user_id) == user
        assert await backend.authenticate(token) == machine
        assert await backend.list_workers(user.user_id, machine.machine_id) == [worker]


async def test_creates_data_dir_and_private_file(tmp_path: Path) -> None:
    """Opening creates missing parent folders and a file only its owner can read."""
    path = tmp_path / "data" / "nested" / "orchestrator.sqlite3"
    async with opened(path):
        assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_wal_and_schema_version(tmp_path: Path) -> None:
    """The file is in WAL mode and records the latest schema version."""
    path = tmp_path / "db.sqlite3"
    async with opened(path):
        pass
    for db in raw(path):
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_migrations_are_idempotent(tmp_path: Path) -> None:
    """Migrating an up-to-date database changes nothing and keeps its data."""
    path = tmp_path / "db.sqlite3"
    async with opened(path) as backend:
        await backend.create_user("alice", "hash")
    async with aiosqlite.connect(path, isolation_level=None) as db:
        assert await migrate(db) == SCHEMA_VERSION
        assert await migrate(db) == SCHEMA_VERSION
        assert await schema_version(db) == SCHEMA_VERSION
    async with opened(path) as backend:
        assert await backend.count_users() == 1


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer orchestrator is refused with a clear sentence."""
    path = tmp_path / "db.sqlite3"
    for db in raw(path):
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(BackendUnavailable, match="Upgrade the orchestrator"):
        await open_backend(path, clock=FakeClock(), ids=RandomIds(), hasher=PlainHasher())


async def test_in_memory_database(tmp_path: Path) -> None:
    """ ":memory:" gives a working, throwaway backend."""
    async with opened(":memory:") as backend:
        user = await backend.create_user("alice", "hash")
        assert await backend.list_users() == [user]


async def test_only_hashes_at_rest(tmp_path: Path) -> None:
    """The machine secret appears nowhere in the database files, only its argon2 hash."""
    path = tmp_path / "db.sqlite3"
    async with opened(path) as backend:
        user = await backend.create_user("alice", "hash")
        _, token = await backend.create_machine(user.user_id, "laptop")
        await backend.heartbeat(token)
        on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
        assert token.secret.encode() not in on_disk
    for db in raw(path):
        [(secret_hash,)] = db.execute("SELECT secret_hash FROM machines").fetchall()
    assert secret_hash.startswith("$argon2")
    assert token.secret not in secret_hash
    assert token.secret.encode() not in path.read_bytes()


async def test_successful_verification_is_cached(tmp_path: Path) -> None:
    """Heartbeats verify the slow hash once; wrong secrets and deleted machines still fail."""
    hasher = PlainHasher()
    async with opened(tmp_path / "db.sqlite3", hasher) as backend:
        user = await backend.create_user("alice", "hash")
        machine, token = await backend.create_machine(user.user_id, "laptop")
        for _ in range(5):
            await backend.heartbeat(token)
        assert hasher.verifies == 1
        with pytest.raises(AuthenticationFailed):
            await backend.heartbeat(MachineToken(machine.machine_id, "sec_wrong"))
        assert hasher.verifies == 2
        await backend.heartbeat(token)
        assert hasher.verifies == 2
        await backend.delete_machine(user.user_id, machine.machine_id)
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await backend.heartbeat(token)


async def test_deleting_a_machine_cascades(tmp_path: Path) -> None:
    """Foreign keys are on: a deleted machine leaves no workers or worker tokens behind."""
    path = tmp_path / "db.sqlite3"
    async with opened(path) as backend:
        user = await backend.create_user("alice", "hash")
        machine, _ = await backend.create_machine(user.user_id, "laptop")
        await backend.add_worker(user.user_id, machine.machine_id, "src", None)
        await backend.issue_worker_token(user.user_id, machine.machine_id)
        await backend.delete_machine(user.user_id, machine.machine_id)
    for db in raw(path):
        assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM worker_tokens").fetchone()[0] == 0


async def test_closed_backend_refuses_calls(tmp_path: Path) -> None:
    """After close, calls raise BackendUnavailable instead of a sqlite error."""
    async with opened(tmp_path / "db.sqlite3") as backend:
        pass
    with pytest.raises(BackendUnavailable):
        await backend.count_users()


async def test_two_processes_see_each_others_writes(tmp_path: Path) -> None:
    """A subscriber wakes up for writes made through another connection to the file."""
    path = tmp_path / "db.sqlite3"
    async with (
        opened(path, poll_interval=0.02) as writer,
        opened(path, poll_interval=0.02) as reader,
    ):
        user = await writer.create_user("alice", "hash")
        updates = reader.watch_machines(user.user_id)
        with anyio.fail_after(5):
            assert await anext(updates) == []
            machine, token = await writer.create_machine(user.user_id, "laptop")
            [summary] = await anext(updates)
            assert summary.machine == machine
            await writer.go_online(token, "/srv")
            [summary] = await anext(updates)
            assert summary.machine.status == "online"
        await updates.aclose()

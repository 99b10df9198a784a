"""The SQLite migration that gives workers a permission policy keeps the workers it finds."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.embedded._schema import MIGRATIONS, SCHEMA_VERSION
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY
from orchestrator.testing import FakeClock, PlainHasher, SequentialIds

pytestmark = pytest.mark.anyio

#: The step that added ``workers.permission_policy``.
POLICY_STEP = next(n for n, step in enumerate(MIGRATIONS) if "permission_policy" in step[0])


async def _open(path: Path) -> SQLiteBackend:
    return await open_backend(path, clock=FakeClock(), ids=SequentialIds(), hasher=PlainHasher())


async def test_a_worker_from_before_policies_gets_the_safe_defaults(tmp_path: Path) -> None:
    """A database one step older (no policy column) migrates; its worker asks before bash."""
    path = tmp_path / "db.sqlite3"
    backend = await _open(path)
    user = await backend.create_user("alice", "hash")
    machine, token = await backend.create_machine(user.user_id, "laptop")
    worker = await backend.add_worker(user.user_id, machine.machine_id, "app", None)
    await backend.close()
    with closing(sqlite3.connect(path)) as db:  # back to the schema before the step
        db.execute("ALTER TABLE workers DROP COLUMN permission_policy")
        db.execute(f"PRAGMA user_version = {POLICY_STEP}")
        db.commit()

    backend = await _open(path)
    try:
        [migrated] = await backend.list_own_workers(token)
        assert migrated.worker_id == worker.worker_id
        assert migrated.permission_policy == DEFAULT_PERMISSION_POLICY
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION

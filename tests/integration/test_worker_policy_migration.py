"""The SQLite migration that gives workers a permission policy keeps the workers it finds."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.embedded._schema import MIGRATIONS, SCHEMA_VERSION
from orchestrator.domain.ids import MachineId, UserId
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY
from orchestrator.testing import FakeClock, PlainHasher, SequentialIds

pytestmark = pytest.mark.anyio

#: The step that added ``workers.permission_policy``.
POLICY_STEP = next(n for n, step in enumerate(MIGRATIONS) if "permission_policy" in step[0])


async def _open(path: Path) -> SQLiteBackend:
    return await open_backend(path, clock=FakeClock(), ids=SequentialIds(), hasher=PlainHasher())


async def test_a_worker_from_before_policies_gets_the_safe_defaults(tmp_path: Path) -> None:
    """A database made by the steps before the policy migrates; its worker asks before bash."""
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:  # the schema as it was before the step
        for step in MIGRATIONS[:POLICY_STEP]:
            for statement in step:
                db.execute(statement)
        db.execute("INSERT INTO users VALUES ('user_1', 'alice', 'hash', 0)")
        db.execute(
            "INSERT INTO machines (machine_id, user_id, name, secret_hash, status, created_at)"
            " VALUES ('machine_1', 'user_1', 'laptop', 'secret', 'offline', 0)"
        )
        db.execute(
            "INSERT INTO workers (worker_id, machine_id, directory, status, created_at)"
            " VALUES ('worker_1', 'machine_1', 'app', 'ready', 0)"
        )
        db.execute(f"PRAGMA user_version = {POLICY_STEP}")
        db.commit()

    backend = await _open(path)
    try:
        [machine] = await backend.list_machines(UserId("user_1"))
        assert machine.machine.machine_id == "machine_1"
        [migrated] = await backend.list_workers(UserId("user_1"), MachineId("machine_1"))
        assert migrated.worker_id == "worker_1"
        assert migrated.permission_policy == DEFAULT_PERMISSION_POLICY
    finally:
        await backend.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION

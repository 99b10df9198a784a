"""The SQLite migration that gives permission requests an edit's file and diff keeps old ones."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.embedded._rows import permission
from orchestrator.adapters.embedded._schema import MIGRATIONS, SCHEMA_VERSION
from orchestrator.domain.chat import PermissionStatus
from orchestrator.testing import FakeClock, PlainHasher, SequentialIds

pytestmark = pytest.mark.anyio

#: The step that added ``permission_requests.diff``.
EDIT_STEP = next(n for n, step in enumerate(MIGRATIONS) if any("COLUMN diff " in s for s in step))


async def test_a_request_from_before_edit_diffs_reads_as_one_without_a_file(
    tmp_path: Path,
) -> None:
    """A stored request made before the step migrates with no file, no diff and size 0."""
    path = tmp_path / "db.sqlite3"
    with closing(sqlite3.connect(path)) as db:  # the schema as it was before the step
        for step in MIGRATIONS[:EDIT_STEP]:
            for statement in step:
                db.execute(statement)
        # Foreign keys are off in a bare connection: the request alone is enough here.
        db.execute(
            "INSERT INTO permission_requests (permission_id, chat_session_id, message_id,"
            " agent_request_id, tool, description, status, created_at)"
            " VALUES ('permission_1', 'chs_1', 'msg_1', 'per_1', 'bash', 'ls', 'pending', 0)"
        )
        db.execute(f"PRAGMA user_version = {EDIT_STEP}")
        db.commit()

    backend = await open_backend(path, clock=FakeClock(), ids=SequentialIds(), hasher=PlainHasher())
    await backend.close()
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        request = permission(db.execute("SELECT * FROM permission_requests").fetchone())
    assert (request.tool, request.status) == ("bash", PermissionStatus.PENDING)
    assert (request.file, request.diff, request.diff_size) == ("", "", 0)

"""The SQLite backend tests and benchmarks open: a real database with the clock and ids given."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.testing import SequentialIds
from orchestrator.testing.fakes import FakeClock
from orchestrator.testing.sqlite import open_test_backend

pytestmark = pytest.mark.anyio


async def test_the_backend_keeps_records_in_the_file_with_the_given_clock(tmp_path: Path) -> None:
    """A user created through it is found again after reopening the same file."""
    clock = FakeClock(datetime(2030, 1, 2, tzinfo=UTC))
    backend = await open_test_backend(tmp_path / "db.sqlite3", clock=clock, ids=SequentialIds())
    try:
        created = await backend.create_user("alice", "hash")
    finally:
        await backend.close()
    reopened = await open_test_backend(tmp_path / "db.sqlite3")
    try:
        found = await reopened.find_user("alice")
    finally:
        await reopened.close()
    assert found is not None
    assert found[0] == created
    assert created.created_at == clock.now()

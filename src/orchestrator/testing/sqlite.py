"""A real SQLite backend as tests and benchmarks open it: fast password hashing."""

from __future__ import annotations

from pathlib import Path

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.domain.ports import Clock, IdGenerator


async def open_test_backend(
    path: Path,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    poll_interval: float = 0.5,
) -> SQLiteBackend:
    """Open the SQLite backend at ``path`` with fast hashing (system clock and ids by default)."""
    return await open_backend(
        path,
        clock=SystemClock() if clock is None else clock,
        ids=RandomIds() if ids is None else ids,
        hasher=Argon2Hasher(fast=True),
        poll_interval=poll_interval,
    )

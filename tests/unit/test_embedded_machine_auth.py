"""Machine calls on the SQLite backend: a secret verified once is checked inside the call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.domain.errors import AuthenticationFailed
from orchestrator.domain.ids import MachineToken
from orchestrator.testing.sqlite import open_test_backend

pytestmark = pytest.mark.anyio


async def test_a_verified_machine_calls_in_one_transaction_and_a_wrong_secret_still_fails(
    tmp_path: Path,
) -> None:
    """After its first call, a machine's heartbeat is one transaction (no read of its own
    for the secret); a wrong secret for that machine is refused all the same."""
    backend = await open_test_backend(tmp_path / "db.sqlite3")
    try:
        user = await backend.create_user("alice", "hash")
        machine, token = await backend.create_machine(user.user_id, "laptop")
        await backend.go_online(token, "/root")  # the secret is verified here
        store: Any = backend._store  # counting what the call asks of SQLite
        opened: list[bool] = []
        transaction: Callable[..., AbstractAsyncContextManager[Any]] = store.transaction

        @asynccontextmanager
        async def counted(*, write: bool = False) -> AsyncIterator[Any]:
            opened.append(write)
            async with transaction(write=write) as tx:
                yield tx

        store.transaction = counted
        await backend.heartbeat(token)
        assert opened == [True]
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await backend.heartbeat(MachineToken(machine.machine_id, token.secret + "x"))
    finally:
        await backend.close()

"""`import orchestrator` is enough to embed the use cases."""

from __future__ import annotations

import pytest

import orchestrator
from orchestrator.testing import InMemoryBackend, PlainHasher

pytestmark = pytest.mark.anyio


def test_every_exported_name_exists() -> None:
    """Each name in ``orchestrator.__all__`` resolves."""
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None


async def test_embedding_creates_a_user_and_a_machine_that_authenticates() -> None:
    """The top-level use cases work against the shipped in-memory backend."""
    backend = InMemoryBackend()
    user = await orchestrator.accounts.create_user(backend, PlainHasher(), "alice", "long password")
    machine, token = await orchestrator.machines.create_machine(backend, user.user_id, " laptop ")
    assert machine.name == "laptop"
    assert (await orchestrator.machines.authenticate_machine(backend, token)).machine_id == (
        machine.machine_id
    )
    with pytest.raises(orchestrator.InvalidToken):
        orchestrator.MachineToken.parse(str(token) + ":extra")

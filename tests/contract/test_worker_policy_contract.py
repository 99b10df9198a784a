"""The backend contract for a worker's permission policy: set when added, changed later."""

from __future__ import annotations

import pytest

from orchestrator.domain.errors import NotFound
from orchestrator.domain.ids import UserId, WorkerId
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionAction,
    PermissionPolicy,
)
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory, pending_worker

pytestmark = pytest.mark.anyio

ALLOW, ASK, DENY = PermissionAction.ALLOW, PermissionAction.ASK, PermissionAction.DENY
OPEN = PermissionPolicy(bash=ALLOW, edit=ALLOW, webfetch=DENY, external_directory=ASK)


async def test_a_worker_gets_the_safe_policy_unless_told_otherwise(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Added without a policy: ask for bash, edit, webfetch, deny outside; a given one is kept."""
    machine, token = await new_machine()
    plain = await backend.add_worker(alice, machine.machine_id, "a", None)
    assert plain.permission_policy == DEFAULT_PERMISSION_POLICY
    assert DEFAULT_PERMISSION_POLICY.as_dict() == {
        "bash": "ask",
        "edit": "ask",
        "webfetch": "ask",
        "external_directory": "deny",
    }
    chosen = await backend.add_worker(alice, machine.machine_id, "b", None, OPEN)
    assert chosen.permission_policy == OPEN
    assert await backend.list_workers(alice, machine.machine_id) == [plain, chosen]
    assert [w.permission_policy for w in await backend.list_own_workers(token)] == [
        DEFAULT_PERMISSION_POLICY,
        OPEN,
    ]


async def test_a_registered_worker_starts_with_the_safe_policy(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A worker registered from the machine with a token also gets the safe defaults."""
    _, _, worker = await pending_worker(backend, alice, new_machine, online=True)
    assert worker.permission_policy == DEFAULT_PERMISSION_POLICY
    approved = await backend.approve_worker(alice, worker.worker_id)
    assert approved.permission_policy == DEFAULT_PERMISSION_POLICY


async def test_the_owner_changes_the_policy_and_the_machine_sees_it(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """set_worker_permission_policy replaces the policy; the machine's own list shows it."""
    machine, token = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    changed = await backend.set_worker_permission_policy(alice, worker.worker_id, OPEN)
    assert changed.permission_policy == OPEN
    assert (changed.worker_id, changed.status, changed.directory) == (
        worker.worker_id,
        worker.status,
        worker.directory,
    )
    [seen] = await backend.list_own_workers(token)
    assert seen.permission_policy == OPEN
    back = await backend.set_worker_permission_policy(
        alice, worker.worker_id, DEFAULT_PERMISSION_POLICY
    )
    assert back.permission_policy == DEFAULT_PERMISSION_POLICY


async def test_only_the_owner_changes_a_policy(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """Someone else's worker, or none at all, is NotFound and nothing changes."""
    machine, _ = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    with pytest.raises(NotFound):
        await backend.set_worker_permission_policy(bob, worker.worker_id, OPEN)
    with pytest.raises(NotFound):
        await backend.set_worker_permission_policy(alice, WorkerId("worker_nope"), OPEN)
    [kept] = await backend.list_workers(alice, machine.machine_id)
    assert kept.permission_policy == DEFAULT_PERMISSION_POLICY

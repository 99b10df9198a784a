"""The backend contract for workers: adding, worker tokens, approval and statuses."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.domain.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    OrchestratorError,
    PathOutsideRoot,
)
from orchestrator.domain.ids import MachineId, UserId, WorkerId, WorkerToken
from orchestrator.domain.model import WorkerStatus
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory, issued_worker_token, pending_worker

pytestmark = pytest.mark.anyio


async def test_add_worker_is_ready(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """An owner-added worker is ready, approved by the owner, on a normalised directory."""
    machine, token = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "./src//app/", "  App ")
    assert (worker.status, worker.directory, worker.name) == ("ready", "src/app", "App")
    assert (worker.machine_id, worker.approved_by) == (machine.machine_id, alice)
    assert worker.approved_at is not None
    assert worker.models == ()
    root = await backend.add_worker(alice, machine.machine_id, "", None)
    assert (root.directory, root.name) == ("", None)
    assert await backend.list_workers(alice, machine.machine_id) == [worker, root]
    assert await backend.list_own_workers(token) == [worker, root]


async def test_get_worker_is_the_owners_only(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """One worker by id, as listed; another user's, an unknown or a removed id is not found."""
    machine, _ = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "src", "App")
    assert await backend.get_worker(alice, worker.worker_id) == worker
    for user, worker_id in ((bob, worker.worker_id), (alice, WorkerId("worker_unknown"))):
        with pytest.raises(NotFound, match=r"^No such worker\.$"):
            await backend.get_worker(user, worker_id)
    await backend.remove_worker(alice, worker.worker_id)
    with pytest.raises(NotFound, match=r"^No such worker\.$"):
        await backend.get_worker(alice, worker.worker_id)


@pytest.mark.parametrize("directory", ["../etc", "/etc", "a/../../b", "a\x00b"])
async def test_add_worker_refuses_paths_outside_root(
    backend: Backend, alice: UserId, new_machine: MachineFactory, directory: str
) -> None:
    """A directory that is absolute, climbs with '..' or holds NUL is refused."""
    machine, _ = await new_machine()
    with pytest.raises(PathOutsideRoot):
        await backend.add_worker(alice, machine.machine_id, directory, None)
    assert await backend.list_workers(alice, machine.machine_id) == []


async def test_register_worker_with_token_waits_for_approval(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A worker registered with an issued token is pending and listed as such."""
    machine, token, worker_token = await issued_worker_token(
        backend, alice, new_machine, online=True
    )
    assert worker_token.machine_id == machine.machine_id
    worker = await backend.register_worker(token, worker_token, "repo", "Repo")
    assert worker.worker_id == worker_token.worker_id
    assert (worker.status, worker.directory, worker.name) == (
        WorkerStatus.PENDING_AUTHORIZATION,
        "repo",
        "Repo",
    )
    assert worker.approved_at is None
    assert worker.approved_by is None
    assert await backend.list_pending_workers(alice) == [worker]
    assert await backend.list_own_workers(token) == [worker]


async def test_worker_token_is_single_use(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Reusing a worker token raises Conflict and creates nothing."""
    machine, token, worker_token = await issued_worker_token(backend, alice, new_machine)
    await backend.register_worker(token, worker_token, "a", None)
    with pytest.raises(Conflict, match=r"This worker token has already been used\."):
        await backend.register_worker(token, worker_token, "b", None)
    assert [w.directory for w in await backend.list_workers(alice, machine.machine_id)] == ["a"]


async def test_worker_token_stays_used_after_reject(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A rejected worker's token cannot register it again."""
    _, token, worker_token = await issued_worker_token(backend, alice, new_machine)
    await backend.register_worker(token, worker_token, "a", None)
    await backend.reject_worker(alice, worker_token.worker_id)
    with pytest.raises(Conflict, match="already been used"):
        await backend.register_worker(token, worker_token, "a", None)


async def test_concurrent_registrations_with_one_token(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Of two registrations racing with one worker token, exactly one succeeds."""
    machine, token, worker_token = await issued_worker_token(backend, alice, new_machine)
    outcomes: list[str] = []

    async def register(directory: str) -> None:
        try:
            await backend.register_worker(token, worker_token, directory, None)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(register, "a")
        tasks.start_soon(register, "b")
    assert sorted(outcomes) == ["conflict", "ok"]
    assert len(await backend.list_workers(alice, machine.machine_id)) == 1


async def test_worker_token_for_another_machine(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A worker token issued for one machine cannot register on another."""
    first, _ = await new_machine("first")
    _, second_token = await new_machine("second")
    worker_token = await backend.issue_worker_token(alice, first.machine_id)
    with pytest.raises(InvalidInput, match="another machine"):
        await backend.register_worker(second_token, worker_token, "a", None)
    # A token forged to name the second machine is unknown there.
    forged = WorkerToken(second_token.machine_id, worker_token.worker_id)
    with pytest.raises(NotFound):
        await backend.register_worker(second_token, forged, "a", None)
    assert await backend.list_pending_workers(alice) == []


async def test_unknown_worker_token(backend: Backend, new_machine: MachineFactory) -> None:
    """A worker token that was never issued raises NotFound."""
    machine, token = await new_machine()
    unknown = WorkerToken(machine.machine_id, WorkerId("wrk_never_issued"))
    with pytest.raises(NotFound, match="worker token"):
        await backend.register_worker(token, unknown, "a", None)


async def test_issue_worker_token_on_someone_elses_machine(
    backend: Backend, bob: UserId, new_machine: MachineFactory
) -> None:
    """Worker tokens can be issued only for one's own machine."""
    machine, _ = await new_machine()
    with pytest.raises(NotFound):
        await backend.issue_worker_token(bob, machine.machine_id)
    with pytest.raises(NotFound):
        await backend.issue_worker_token(bob, MachineId("mch_missing"))


async def _pending(backend: Backend, user: UserId, new_machine: MachineFactory) -> WorkerId:
    """The id of a new worker of ``user`` waiting for approval."""
    _, _, worker = await pending_worker(backend, user, new_machine)
    return worker.worker_id


async def test_approve_worker(backend: Backend, alice: UserId, new_machine: MachineFactory) -> None:
    """Approving a pending worker makes it ready, records who and when, and unlists it."""
    worker_id = await _pending(backend, alice, new_machine)
    worker = await backend.approve_worker(alice, worker_id)
    assert (worker.status, worker.approved_by) == (WorkerStatus.READY, alice)
    assert worker.approved_at is not None
    assert await backend.list_pending_workers(alice) == []


async def test_only_pending_workers_can_be_approved_or_rejected(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Approving or rejecting a worker that is not pending raises InvalidTransition."""
    machine, _ = await new_machine()
    ready = await backend.add_worker(alice, machine.machine_id, "a", None)
    with pytest.raises(InvalidTransition, match="waiting for approval"):
        await backend.approve_worker(alice, ready.worker_id)
    with pytest.raises(InvalidTransition, match="waiting for approval"):
        await backend.reject_worker(alice, ready.worker_id)
    assert await backend.list_workers(alice, machine.machine_id) == [ready]


async def test_reject_worker_deletes_it(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Rejecting a pending worker deletes it."""
    worker_id = await _pending(backend, alice, new_machine)
    await backend.reject_worker(alice, worker_id)
    assert await backend.list_pending_workers(alice) == []
    with pytest.raises(NotFound):
        await backend.approve_worker(alice, worker_id)


async def test_remove_worker_in_any_status(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Removing deletes a worker whatever its status."""
    pending = await _pending(backend, alice, new_machine)
    machine, token = await new_machine("other", online=True)
    online = await backend.add_worker(alice, machine.machine_id, "a", None)
    await backend.worker_heartbeat(token, online.worker_id)
    for worker_id in (pending, online.worker_id):
        await backend.remove_worker(alice, worker_id)
    assert await backend.list_workers(alice, machine.machine_id) == []
    assert await backend.list_pending_workers(alice) == []


async def test_someone_elses_worker_is_not_found(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """Approving, rejecting or removing another user's worker raises NotFound."""
    worker_id = await _pending(backend, alice, new_machine)
    for call in (
        backend.approve_worker(bob, worker_id),
        backend.reject_worker(bob, worker_id),
        backend.remove_worker(bob, worker_id),
    ):
        with pytest.raises(NotFound, match=r"No such worker\."):
            await call
    assert await backend.list_pending_workers(bob) == []
    assert [w.worker_id for w in await backend.list_pending_workers(alice)] == [worker_id]


async def test_pending_worker_cannot_go_online_or_offline(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A pending worker's heartbeat or offline raises InvalidTransition."""
    _, token, worker = await pending_worker(backend, alice, new_machine, online=True)
    with pytest.raises(InvalidTransition, match="waiting for approval"):
        await backend.worker_heartbeat(token, worker.worker_id)
    with pytest.raises(InvalidTransition):
        await backend.worker_offline(token, worker.worker_id)
    assert (await backend.list_own_workers(token))[0].status is WorkerStatus.PENDING_AUTHORIZATION


async def test_worker_heartbeat_and_offline(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """An approved worker goes online with a heartbeat, offline, and online again."""
    machine, token = await new_machine(online=True)
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    online = await backend.worker_heartbeat(token, worker.worker_id)
    assert online.status is WorkerStatus.ONLINE
    assert online.last_heartbeat is not None
    again = await backend.worker_heartbeat(token, worker.worker_id)
    assert again.last_heartbeat is not None
    assert again.last_heartbeat > online.last_heartbeat
    offline = await backend.worker_offline(token, worker.worker_id)
    assert (offline.status, offline.last_heartbeat) == (WorkerStatus.OFFLINE, again.last_heartbeat)
    assert (await backend.worker_heartbeat(token, worker.worker_id)).status is WorkerStatus.ONLINE


async def test_worker_offline_with_a_problem_keeps_it_until_a_heartbeat(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A machine that cannot run a worker says why; the owner sees it until it comes online."""
    machine, token = await new_machine(online=True)
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    problem = "The folder 'a' leads outside the machine's root."
    refused = await backend.worker_offline(token, worker.worker_id, problem)
    assert (refused.status, refused.problem) == (WorkerStatus.OFFLINE, problem)
    [listed] = await backend.list_workers(alice, machine.machine_id)
    assert listed.problem == problem
    online = await backend.worker_heartbeat(token, worker.worker_id)
    assert (online.status, online.problem) == (WorkerStatus.ONLINE, None)
    assert (await backend.worker_offline(token, worker.worker_id)).problem is None


async def test_ready_worker_may_go_offline(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A ready worker that never came online may be marked offline."""
    machine, token = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    assert (await backend.worker_offline(token, worker.worker_id)).status is WorkerStatus.OFFLINE


async def test_machine_cannot_touch_another_machines_worker(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A machine's calls on a worker of another machine raise NotFound."""
    first, _ = await new_machine("first")
    _, second_token = await new_machine("second")
    worker = await backend.add_worker(alice, first.machine_id, "a", None)
    for call in (
        backend.worker_heartbeat(second_token, worker.worker_id),
        backend.worker_offline(second_token, worker.worker_id),
        backend.update_worker_models(second_token, worker.worker_id, ["m"]),
    ):
        with pytest.raises(NotFound, match=r"No such worker\."):
            await call
    assert await backend.list_workers(alice, first.machine_id) == [worker]


async def test_update_worker_models(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """The worker's model list is replaced in order."""
    machine, token = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    updated = await backend.update_worker_models(token, worker.worker_id, ["openai/gpt", "x/y"])
    assert updated.models == ("openai/gpt", "x/y")
    assert (await backend.list_workers(alice, machine.machine_id))[0].models == updated.models
    emptied = await backend.update_worker_models(token, worker.worker_id, [])
    assert emptied.models == ()


async def test_errors_are_orchestrator_errors(backend: Backend, alice: UserId) -> None:
    """Refusals are OrchestratorErrors with a one-sentence message, never raw exceptions."""
    with pytest.raises(OrchestratorError) as raised:
        await backend.approve_worker(alice, WorkerId("wrk_missing"))
    assert raised.value.message.endswith(".")

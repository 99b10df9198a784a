"""The backend contract: accounts, machines, machine authentication and maintenance."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
)
from orchestrator.domain.ids import MachineId, MachineToken, UserId
from orchestrator.domain.model import MachineStatus, WorkerCounts, WorkerStatus
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory

pytestmark = pytest.mark.anyio

# --- accounts -------------------------------------------------------------------


async def test_create_and_find_user(backend: Backend) -> None:
    """A new account can be found by username (with its hash) and by ID."""
    assert await backend.count_users() == 0
    user = await backend.create_user("alice", "argon2-hash")
    assert user.username == "alice"
    assert user.created_at.tzinfo is not None
    assert await backend.find_user("alice") == (user, "argon2-hash")
    assert await backend.get_user(user.user_id) == user
    assert await backend.count_users() == 1


async def test_list_users_oldest_first(backend: Backend) -> None:
    """Every account is listed, oldest first."""
    assert await backend.list_users() == []
    first = await backend.create_user("zed", "h1")
    second = await backend.create_user("amy", "h2")
    assert await backend.list_users() == [first, second]


async def test_duplicate_username_conflicts(backend: Backend, alice: UserId) -> None:
    """A taken username raises Conflict and creates nothing."""
    with pytest.raises(Conflict, match="taken"):
        await backend.create_user("alice", "other-hash")
    assert await backend.count_users() == 1
    found = await backend.find_user("alice")
    assert found is not None
    assert found[1] == "hash-of-alice"


async def test_unknown_user(backend: Backend) -> None:
    """An unknown username finds nothing and an unknown ID raises NotFound."""
    assert await backend.find_user("nobody") is None
    with pytest.raises(NotFound):
        await backend.get_user(UserId("usr_missing"))


# --- machines, as their owner ------------------------------------------------------


async def test_create_machine(backend: Backend, alice: UserId) -> None:
    """A new machine is offline, owned by its creator, and its token authenticates."""
    machine, token = await backend.create_machine(alice, "  laptop ")
    assert (machine.name, machine.user_id, machine.status) == ("laptop", alice, "offline")
    assert machine.last_heartbeat is None
    assert token.machine_id == machine.machine_id
    assert token.secret
    assert await backend.authenticate(token) == machine
    assert await backend.get_machine(alice, machine.machine_id) == machine


async def test_create_machine_refuses_bad_name(backend: Backend, alice: UserId) -> None:
    """A blank machine name raises InvalidInput and creates nothing."""
    with pytest.raises(InvalidInput):
        await backend.create_machine(alice, "   ")
    assert await backend.list_machines(alice) == []


async def test_create_machine_for_unknown_user(backend: Backend) -> None:
    """A machine cannot belong to a user that does not exist."""
    with pytest.raises(NotFound):
        await backend.create_machine(UserId("usr_missing"), "laptop")


async def test_list_machines_own_only_oldest_first(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """A user lists only their machines, oldest first, with zero counts when empty."""
    first, _ = await new_machine("one")
    await new_machine("bobs", user=bob)
    second, _ = await new_machine("two")
    summaries = await backend.list_machines(alice)
    assert [s.machine for s in summaries] == [first, second]
    assert all(s.workers == WorkerCounts() for s in summaries)
    assert [s.machine.name for s in await backend.list_machines(bob)] == ["bobs"]


async def test_list_machines_counts_workers_by_status(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Machine summaries count the machine's workers in each status."""
    machine, token = await new_machine(online=True)
    await backend.add_worker(alice, machine.machine_id, "a", None)
    online = await backend.add_worker(alice, machine.machine_id, "b", None)
    offline = await backend.add_worker(alice, machine.machine_id, "c", None)
    await backend.worker_heartbeat(token, online.worker_id)
    await backend.worker_offline(token, offline.worker_id)
    for _ in range(2):
        worker_token = await backend.issue_worker_token(alice, machine.machine_id)
        await backend.register_worker(token, worker_token, "d", None)
    [summary] = await backend.list_machines(alice)
    assert summary.workers == WorkerCounts(pending_authorization=2, ready=1, online=1, offline=1)


async def test_someone_elses_machine_is_not_found(
    backend: Backend, bob: UserId, new_machine: MachineFactory
) -> None:
    """Another user's machine ID raises NotFound for every owner operation."""
    machine, _ = await new_machine()
    mid = machine.machine_id
    for call in (
        backend.get_machine(bob, mid),
        backend.delete_machine(bob, mid),
        backend.list_workers(bob, mid),
        backend.add_worker(bob, mid, "src", None),
        backend.issue_worker_token(bob, mid),
    ):
        with pytest.raises(NotFound, match=r"No such machine\."):
            await call
    assert (await backend.list_machines(bob)) == []
    assert len(await backend.list_machines(machine.user_id)) == 1


async def test_unknown_machine_is_not_found(backend: Backend, alice: UserId) -> None:
    """A machine ID that does not exist raises NotFound."""
    with pytest.raises(NotFound, match=r"No such machine\."):
        await backend.get_machine(alice, MachineId("mch_missing"))


async def test_delete_machine(backend: Backend, alice: UserId, new_machine: MachineFactory) -> None:
    """Deleting a machine removes it and its workers and its token stops working."""
    machine, token = await new_machine(online=True)
    worker = await backend.add_worker(alice, machine.machine_id, "src", None)
    await backend.delete_machine(alice, machine.machine_id)
    assert await backend.list_machines(alice) == []
    with pytest.raises(NotFound):
        await backend.get_machine(alice, machine.machine_id)
    with pytest.raises(NotFound):
        await backend.remove_worker(alice, worker.worker_id)
    with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
        await backend.authenticate(token)


# --- machine authentication -------------------------------------------------------


async def test_wrong_secret_and_unknown_machine_fail_alike(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """A wrong secret and an unknown machine both raise AuthenticationFailed("Invalid token")."""
    machine, token = await new_machine()
    wrong_secret = MachineToken(machine.machine_id, token.secret + "x")
    unknown = MachineToken(MachineId("mch_unknown"), token.secret)
    messages = []
    for bad in (wrong_secret, unknown):
        with pytest.raises(AuthenticationFailed) as raised:
            await backend.authenticate(bad)
        messages.append(raised.value.message)
    assert messages == ["Invalid token", "Invalid token"]


async def test_every_machine_call_checks_the_token(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Every machine-side call refuses a wrong token and changes nothing."""
    machine, token = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "src", None)
    worker_token = await backend.issue_worker_token(alice, machine.machine_id)
    bad = MachineToken(machine.machine_id, "sec_wrong")
    wid = worker.worker_id
    for call in (
        backend.authenticate(bad),
        backend.go_online(bad, "/root"),
        backend.heartbeat(bad),
        backend.go_offline(bad),
        backend.list_own_workers(bad),
        backend.register_worker(bad, worker_token, "x", None),
        backend.worker_heartbeat(bad, wid),
        backend.worker_offline(bad, wid),
        backend.update_worker_models(bad, wid, ["m"]),
    ):
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await call
    assert await backend.get_machine(alice, machine.machine_id) == machine
    assert await backend.list_workers(alice, machine.machine_id) == [worker]
    # The worker token was not spent by the failed registration.
    assert (await backend.register_worker(token, worker_token, "x", None)).worker_id


async def test_deleted_machines_token_fails(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """After deletion, even a token that worked a moment ago raises "Invalid token"."""
    machine, token = await new_machine(online=True)
    await backend.heartbeat(token)
    await backend.delete_machine(alice, machine.machine_id)
    for call in (
        backend.heartbeat(token),
        backend.go_online(token, "/r"),
        backend.go_offline(token),
    ):
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await call


async def test_go_online_heartbeat_go_offline(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """A machine goes online with its root, heartbeats move its clock, and it goes offline."""
    _, token = await new_machine()
    online = await backend.go_online(token, "/srv/code")
    assert online.status is MachineStatus.ONLINE
    assert online.root_directory == "/srv/code"
    assert online.last_heartbeat is not None
    beat = await backend.heartbeat(token)
    assert beat.last_heartbeat is not None
    assert beat.last_heartbeat > online.last_heartbeat
    await backend.go_offline(token)
    offline = await backend.authenticate(token)
    assert offline.status is MachineStatus.OFFLINE
    assert offline.root_directory == "/srv/code"
    assert (await backend.heartbeat(token)).status is MachineStatus.ONLINE


async def test_go_offline_sets_online_workers_offline(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Going offline takes the machine's online workers offline; ready ones stay ready."""
    machine, token = await new_machine(online=True)
    online = await backend.add_worker(alice, machine.machine_id, "a", None)
    ready = await backend.add_worker(alice, machine.machine_id, "b", None)
    await backend.worker_heartbeat(token, online.worker_id)
    await backend.go_offline(token)
    statuses = {w.worker_id: w.status for w in await backend.list_own_workers(token)}
    assert statuses == {online.worker_id: WorkerStatus.OFFLINE, ready.worker_id: "ready"}


# --- maintenance ---------------------------------------------------------------------


async def test_mark_stale_machines_offline(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Online machines without a heartbeat since the cutoff (and their workers) go offline."""
    stale, stale_token = await new_machine("stale", online=True)
    worker = await backend.add_worker(alice, stale.machine_id, "src", None)
    await backend.worker_heartbeat(stale_token, worker.worker_id)
    await new_machine("never online")
    fresh, fresh_token = await new_machine("fresh", online=True)
    fresh = await backend.heartbeat(fresh_token)
    assert stale.last_heartbeat is not None
    assert fresh.last_heartbeat is not None
    assert fresh.last_heartbeat > stale.last_heartbeat
    # A heartbeat exactly at the cutoff is recent enough.
    assert await backend.mark_stale_machines_offline(stale.last_heartbeat) == []
    cutoff = stale.last_heartbeat + timedelta(milliseconds=1)
    assert cutoff <= fresh.last_heartbeat
    assert await backend.mark_stale_machines_offline(cutoff) == [stale.machine_id]
    statuses = {s.machine.name: s.machine.status for s in await backend.list_machines(alice)}
    assert statuses == {"stale": "offline", "never online": "offline", "fresh": "online"}
    [after] = await backend.list_workers(alice, stale.machine_id)
    assert after.status is WorkerStatus.OFFLINE
    # Already offline: not reported again.
    assert await backend.mark_stale_machines_offline(cutoff) == []

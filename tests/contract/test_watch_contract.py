"""The backend contract for subscriptions: the current result at once, then each change."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
import pytest

from orchestrator.domain.errors import AuthenticationFailed, NotFound
from orchestrator.domain.ids import MachineId, MachineToken, UserId
from orchestrator.domain.model import MachineStatus, WorkerStatus
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory

pytestmark = pytest.mark.anyio

T = TypeVar("T")

#: Generous: a timeout here means a missed notification, not a slow machine.
WAIT = 5


async def next_value(updates: AsyncIterator[T]) -> T:
    with anyio.fail_after(WAIT):
        return await anext(updates)


async def aclose(updates: AsyncIterator[T]) -> None:
    """Stop consuming a subscription; every backend must support this."""
    assert isinstance(updates, AsyncGenerator)
    await updates.aclose()


@asynccontextmanager
async def watching(updates: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Consume a subscription inside the block, closing it afterwards however the block ends."""
    try:
        yield updates
    finally:
        await aclose(updates)


async def test_watch_machines_yields_now_then_changes(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """watch_machines yields the current list, then the list after each change."""
    async with watching(backend.watch_machines(alice)) as updates:
        assert await next_value(updates) == []
        machine, token = await new_machine()
        [summary] = await next_value(updates)
        assert summary.machine == machine
        await backend.go_online(token, "/r")
        [summary] = await next_value(updates)
        assert summary.machine.status is MachineStatus.ONLINE
        await backend.add_worker(alice, machine.machine_id, "a", None)
        [summary] = await next_value(updates)
        assert summary.workers.ready == 1


async def test_watch_skips_changes_that_do_not_alter_the_result(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """Writes that leave a subscriber's result unchanged yield nothing to it."""
    async with watching(backend.watch_machines(alice)) as updates:
        assert await next_value(updates) == []
        await new_machine("bobs", user=bob)
        mine, _ = await new_machine("mine")
        assert [s.machine for s in await next_value(updates)] == [mine]


async def test_watch_workers_yields_now_then_changes(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """watch_workers yields the machine's workers, then again after each change."""
    machine, token = await new_machine(online=True)
    async with watching(backend.watch_workers(alice, machine.machine_id)) as updates:
        assert await next_value(updates) == []
        worker_token = await backend.issue_worker_token(alice, machine.machine_id)
        await backend.register_worker(token, worker_token, "repo", None)
        [worker] = await next_value(updates)
        assert worker.status is WorkerStatus.PENDING_AUTHORIZATION
        await backend.approve_worker(alice, worker.worker_id)
        assert [w.status for w in await next_value(updates)] == [WorkerStatus.READY]
        await backend.worker_heartbeat(token, worker.worker_id)
        assert [w.status for w in await next_value(updates)] == [WorkerStatus.ONLINE]
        await backend.remove_worker(alice, worker.worker_id)
        assert await next_value(updates) == []


async def test_watch_someone_elses_machine_is_not_found(
    backend: Backend, bob: UserId, new_machine: MachineFactory
) -> None:
    """Watching another user's (or no) machine raises NotFound on the first iteration."""
    machine, _ = await new_machine()
    for machine_id in (machine.machine_id, MachineId("mch_missing")):
        updates = backend.watch_workers(bob, machine_id)
        with pytest.raises(NotFound, match=r"No such machine\."):
            await next_value(updates)
        await aclose(updates)


async def test_watching_workers_of_a_deleted_machine_raises(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Once its machine is deleted, the owner's and the machine's own view of its workers raise."""
    machine, token = await new_machine()
    async with (
        watching(backend.watch_workers(alice, machine.machine_id)) as owners,
        watching(backend.watch_own_workers(token)) as own,
    ):
        assert await next_value(owners) == []
        assert await next_value(own) == []
        await backend.delete_machine(alice, machine.machine_id)
        with pytest.raises(NotFound):
            await next_value(owners)
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await next_value(own)


async def test_watch_own_workers_yields_now_then_changes(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """watch_own_workers yields the machine's workers, then again after the owner acts."""
    machine, token = await new_machine(online=True)
    async with watching(backend.watch_own_workers(token)) as updates:
        assert await next_value(updates) == []
        worker = await backend.add_worker(alice, machine.machine_id, "a", None)
        assert await next_value(updates) == [worker]
        await backend.remove_worker(alice, worker.worker_id)
        assert await next_value(updates) == []


async def test_watch_own_workers_with_bad_token(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """A wrong token raises AuthenticationFailed on the first iteration."""
    machine, _ = await new_machine()
    updates = backend.watch_own_workers(MachineToken(machine.machine_id, "sec_wrong"))
    with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
        await next_value(updates)
    await aclose(updates)


async def test_watch_ends_when_consumer_closes(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A subscription the consumer closes ends quietly and later writes still work."""
    updates = backend.watch_machines(alice)
    assert await next_value(updates) == []
    await aclose(updates)
    await new_machine()
    with pytest.raises(StopAsyncIteration):
        await next_value(updates)
    assert len(await backend.list_machines(alice)) == 1


async def test_watch_ends_when_backend_closes(backend: Backend, alice: UserId) -> None:
    """Closing the backend ends a subscription that is waiting for a change."""
    updates = backend.watch_machines(alice)
    assert await next_value(updates) == []
    ended = anyio.Event()

    async def consume() -> None:
        # A subscription may deliver the same value again (the official client does
        # on a reconnect); nothing else may come, and the iteration must end.
        with anyio.fail_after(2 * WAIT):  # closing waits up to 2 s for the child to exit
            async for value in updates:
                assert value == []
        ended.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        await backend.close()
    assert ended.is_set()

"""The machine process against the in-memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import attrs
import pytest

from orchestrator.application.machine_process import (
    MachineProcess,
    directory_problem,
    worker_directory,
)
from orchestrator.application.retry import Backoff, Connection, retry_until_reachable
from orchestrator.domain.errors import AuthenticationFailed, BackendUnavailable, MachineInUse
from orchestrator.domain.ids import MachineToken, UserId
from orchestrator.domain.lease import Lease
from orchestrator.domain.model import MachineStatus, Worker, WorkerStatus
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from orchestrator.testing import InMemoryBackend
from orchestrator.testing.agent import ScriptedAgentRuntime
from tests.unit._machine import quick_machine_process

pytestmark = pytest.mark.anyio


@attrs.define
class Machine:
    backend: InMemoryBackend
    user: UserId
    token: MachineToken
    lines: list[str]

    def process(self, root: Path) -> MachineProcess:
        return quick_machine_process(self.backend, self.token, root, self.lines)


@pytest.fixture
async def machine() -> Machine:
    backend = InMemoryBackend()
    user = await backend.create_user("alice", "plain$pw")
    _, token = await backend.create_machine(user.user_id, "laptop")
    return Machine(backend, user.user_id, token, [])


async def wait_for(predicate: object, timeout: float = 3) -> None:
    with anyio.fail_after(timeout):
        while not callable(predicate) or not predicate():
            await anyio.sleep(0.005)


async def test_retry_reports_and_retries_only_unreachable_backends() -> None:
    """BackendUnavailable is retried, reported once lost and once back; other errors propagate."""
    calls: list[int] = []
    lines: list[str] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise BackendUnavailable("Cannot reach the server.")
        return "ok"

    connection = Connection(lines.append)
    assert await retry_until_reachable(flaky, Backoff(base=0.001, cap=0.001), connection) == "ok"
    assert len(calls) == 3
    assert len(lines) == 2
    assert lines[0].startswith("Cannot reach the server. Reconnecting in ")
    assert lines[1] == "Reconnected."

    async def wrong() -> str:
        raise AuthenticationFailed()

    with pytest.raises(AuthenticationFailed):
        await retry_until_reachable(wrong, Backoff(), connection)
    assert len(lines) == 2


async def test_start_goes_online_and_stop_goes_offline(machine: Machine, tmp_path: Path) -> None:
    """start() marks the machine online with its root; stop() marks it offline."""
    process = machine.process(tmp_path)
    await process.start()
    record = machine.backend.machines[machine.token.machine_id]
    assert record.status is MachineStatus.ONLINE
    assert record.root_directory == str(tmp_path)
    await process.stop()
    assert machine.backend.machines[machine.token.machine_id].status is MachineStatus.OFFLINE
    assert machine.lines[-1] == "Machine is offline."


async def test_wrong_token_fails_start(machine: Machine, tmp_path: Path) -> None:
    """A wrong secret is not retried: start() raises AuthenticationFailed."""
    process = machine.process(tmp_path)
    process.token = MachineToken(machine.token.machine_id, "sec_wrong")
    with pytest.raises(AuthenticationFailed):
        await process.start()


async def test_run_heartbeats_and_brings_approved_workers_online(
    machine: Machine, tmp_path: Path
) -> None:
    """Approved workers with a folder go online; pending ones wait; missing folders are told."""
    (tmp_path / "app").mkdir()
    backend, mid = machine.backend, machine.token.machine_id
    ready = await backend.add_worker(machine.user, mid, "app", "app")
    missing = await backend.add_worker(machine.user, mid, "gone", None)
    worker_token = await backend.issue_worker_token(machine.user, mid)
    pending = await backend.register_worker(machine.token, worker_token, "app", "second")

    process = machine.process(tmp_path)
    await process.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(process.run)
        await wait_for(lambda: backend.workers[ready.worker_id].status is WorkerStatus.ONLINE)
        first_beat = backend.machines[mid].last_heartbeat
        backend.clock.advance(5)  # type: ignore[attr-defined]
        await wait_for(lambda: backend.machines[mid].last_heartbeat != first_beat)

        # Approving the pending worker while running brings it online too.
        await backend.approve_worker(machine.user, pending.worker_id)
        await wait_for(lambda: backend.workers[pending.worker_id].status is WorkerStatus.ONLINE)

        await backend.remove_worker(machine.user, ready.worker_id)
        await wait_for(lambda: any("was removed" in line for line in machine.lines))
        tg.cancel_scope.cancel()
    await process.stop()

    gone = backend.workers[missing.worker_id]
    assert gone.status is WorkerStatus.OFFLINE
    assert gone.problem == f"The folder 'gone' does not exist under the machine's root {tmp_path}."
    assert backend.workers[pending.worker_id].status is WorkerStatus.OFFLINE
    text = "\n".join(machine.lines)
    assert "is waiting for approval in the web UI" in text
    assert f"cannot run: {gone.problem}" in text
    # Announcements are not repeated on every heartbeat.
    assert sum("is waiting for approval" in line for line in machine.lines) == 1


@attrs.define
class Unreachable:
    """A backend whose server is down for the first ``failures`` calls of each kind."""

    inner: InMemoryBackend
    failures: int
    calls: int = 0

    async def heartbeat(self, token: MachineToken, lease: Lease | None = None) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise BackendUnavailable("Cannot reach the server.")
        return await self.inner.heartbeat(token, lease)

    async def watch_own_workers(self, token: MachineToken) -> AsyncIterator[list[Worker]]:
        self.calls += 1
        if self.calls <= self.failures:
            raise BackendUnavailable("Cannot reach the server.")
        async for workers in self.inner.watch_own_workers(token):
            yield workers

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_run_survives_an_unreachable_backend(machine: Machine, tmp_path: Path) -> None:
    """Heartbeats and the worker watch keep retrying while the server is down."""
    flaky = Unreachable(machine.backend, failures=4)
    process = machine.process(tmp_path)
    process.backend = flaky  # type: ignore[assignment]
    await process.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(process.run)
        await wait_for(lambda: flaky.calls > 6)
        tg.cancel_scope.cancel()
    # The heartbeat and the worker watch both lose the server: one line, and one when back.
    assert sum("Reconnecting in" in line for line in machine.lines) == 1, machine.lines
    assert machine.lines.count("Reconnected.") == 1


def test_worker_directory_refuses_escapes(tmp_path: Path) -> None:
    """A worker directory that is missing or a symlink out of the root has no path."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok").mkdir()
    (root / "out").symlink_to(tmp_path)

    def worker(directory: str) -> Worker:
        from datetime import UTC, datetime

        return Worker(
            worker_id="wrk_1",  # type: ignore[arg-type]
            machine_id="mch_1",  # type: ignore[arg-type]
            directory=directory,
            status=WorkerStatus.READY,
            created_at=datetime.now(UTC),
        )

    assert worker_directory(root, worker("ok")) == root / "ok"
    assert worker_directory(root, worker("")) == root
    assert worker_directory(root, worker("out")) is None
    assert worker_directory(root, worker("missing")) is None
    assert directory_problem(root, worker("ok")) is None
    assert directory_problem(root, worker("out")) == (
        f"The folder 'out' leads outside the machine's root {root} (through a symbolic link), "
        "so the machine refuses it; add a worker on a folder inside the root."
    )
    assert directory_problem(root, worker("missing")) == (
        f"The folder 'missing' does not exist under the machine's root {root}."
    )


async def test_a_worker_on_a_symlink_out_of_the_root_is_refused_with_why_until_fixed(
    machine: Machine, tmp_path: Path
) -> None:
    """A symlink out of the root: offline with the sentence; a real folder there: online."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "out").symlink_to(tmp_path)
    backend = machine.backend
    worker = await backend.add_worker(machine.user, machine.token.machine_id, "out", None)
    process = machine.process(root)
    await process.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(process.run)
        await wait_for(lambda: backend.workers[worker.worker_id].problem is not None)
        refused = backend.workers[worker.worker_id]
        assert refused.status is WorkerStatus.OFFLINE
        assert refused.problem == directory_problem(root, worker)
        assert "leads outside the machine's root" in "\n".join(machine.lines)
        (root / "out").unlink()
        (root / "out").mkdir()
        await wait_for(lambda: backend.workers[worker.worker_id].status is WorkerStatus.ONLINE)
        assert backend.workers[worker.worker_id].problem is None
        tg.cancel_scope.cancel()
    await process.stop()


async def test_a_worker_removed_between_heartbeats_is_dropped_not_fatal(
    machine: Machine, tmp_path: Path
) -> None:
    """Removing an online worker in the UI does not stop the machine process."""
    backend, mid = machine.backend, machine.token.machine_id
    worker = await backend.add_worker(machine.user, mid, "", "root")
    process = machine.process(tmp_path)
    await process.start()
    await process._apply(await backend.list_own_workers(machine.token))
    assert worker.worker_id in process.workers
    await backend.remove_worker(machine.user, worker.worker_id)
    await process.beat()  # the heartbeat meets NotFound for the removed worker
    assert worker.worker_id not in process.workers


async def test_a_second_process_waits_as_a_standby_and_takes_over_when_the_first_stops(
    machine: Machine, tmp_path: Path
) -> None:
    """The second process says why it waits, does not go online, and takes over after stop()."""
    first, second = machine.process(tmp_path), machine.process(tmp_path)
    await first.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(second.start)
        await wait_for(lambda: any("already running" in line for line in machine.lines))
        assert sum("is online" in line for line in machine.lines) == 1
        await first.stop()
        await wait_for(lambda: sum("is online" in line for line in machine.lines) == 2)
    holder, _ = machine.backend.leases[machine.token.machine_id]
    assert holder == second.lease.instance
    assert sum("already running" in line for line in machine.lines) == 1


async def test_a_process_whose_lease_was_taken_over_stops_with_the_reason(
    machine: Machine, tmp_path: Path
) -> None:
    """A heartbeat refused because another process took over ends run() with MachineInUse."""
    first = machine.process(tmp_path)
    await first.start()
    # Another process claims the machine after the first's lease ran out.
    machine.backend.leases[machine.token.machine_id] = ("other", datetime.now(UTC))
    with anyio.fail_after(3), pytest.raises(MachineInUse):
        await first.run()


async def test_a_worker_coming_online_starts_its_agent_with_the_workers_policy(
    machine: Machine, tmp_path: Path
) -> None:
    """Reading the models (and agents, commands) of a worker coming online carries its policy."""
    (tmp_path / "app").mkdir()
    policy = PermissionPolicy(bash=PermissionAction.ALLOW)
    backend, mid = machine.backend, machine.token.machine_id
    worker = await backend.add_worker(machine.user, mid, "app", "app", policy)
    runtime = ScriptedAgentRuntime(models=["fake/one"])
    process = machine.process(tmp_path)
    process.runtime = runtime
    await process.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(process.run)
        await wait_for(lambda: backend.workers[worker.worker_id].models == ("fake/one",))
        await wait_for(lambda: backend.workers[worker.worker_id].commands == ("review",))
        tg.cancel_scope.cancel()
    await process.stop()
    assert runtime.model_policies == [policy]
    assert backend.workers[worker.worker_id].agents == ("build", "plan")

"""The machine process: bring a machine online, keep it alive, take it offline.

It holds no state of its own. Everything it does is derived from the backend,
so it can be killed at any moment and started again.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import anyio
import attrs

from orchestrator.application.machines import update_worker_agents
from orchestrator.application.retry import (
    TRANSIENT,
    Backoff,
    Connection,
    Report,
    keep_reachable,
    retry_until_reachable,
)
from orchestrator.domain.agent import AgentRuntime
from orchestrator.domain.errors import (
    InvalidTransition,
    MachineInUse,
    NotFound,
    OrchestratorError,
)
from orchestrator.domain.ids import MachineToken, WorkerId
from orchestrator.domain.lease import Lease
from orchestrator.domain.model import Machine, Worker, WorkerStatus
from orchestrator.domain.ports import MachineBackend

log = logging.getLogger(__name__)


def directory_problem(root: Path, worker: Worker) -> str | None:
    """Why the worker's folder cannot be used, as one sentence for its owner; None if it can."""
    label = worker.directory or "."
    path = (root / worker.directory).resolve()
    if not path.is_relative_to(root):
        return (
            f"The folder {label!r} leads outside the machine's root {root} (through a "
            "symbolic link), so the machine refuses it; add a worker on a folder inside the root."
        )
    if not path.is_dir():
        return f"The folder {label!r} does not exist under the machine's root {root}."
    return None


def worker_directory(root: Path, worker: Worker) -> Path | None:
    """The worker's directory on disk, or None if it is missing or leaves the root."""
    if directory_problem(root, worker) is not None:
        return None
    return (root / worker.directory).resolve()


class ChatRunner(Protocol):
    """Runs the machine's chat sessions (see ``application.sessions.SessionManager``)."""

    async def run(self) -> None: ...

    def workers_changed(self) -> None: ...


class CommandsRunner(Protocol):
    """Runs the machine's directory commands (see ``application.commands.CommandRunner``)."""

    async def run(self) -> None: ...


@attrs.define
class MachineProcess:
    """Runs one machine: online, heartbeats for it and its workers, their agents, offline.

    With a ``runtime`` the process reports each worker's models when the worker
    comes online; with ``sessions`` it also runs the workers' chat sessions, and
    with ``commands`` the directory commands sent to the machine.
    """

    backend: MachineBackend
    token: MachineToken
    root: Path
    heartbeat_interval: timedelta = timedelta(seconds=10)
    backoff: Backoff = attrs.field(factory=Backoff)
    report: Report = print
    #: Shared with the chat sessions and commands, so an outage is reported once.
    connection: Connection = attrs.field(
        default=attrs.Factory(lambda self: Connection(self.report), takes_self=True)
    )
    runtime: AgentRuntime | None = None
    sessions: ChatRunner | None = None
    commands: CommandsRunner | None = None
    workers: dict[WorkerId, Worker] = attrs.field(factory=dict)
    #: This process's claim on the machine: one machine process per machine.
    lease: Lease = attrs.field(
        default=attrs.Factory(
            lambda self: Lease.for_heartbeat(secrets.token_hex(12), self.heartbeat_interval),
            takes_self=True,
        )
    )
    _announced: dict[WorkerId, str] = attrs.field(factory=dict)
    _lost: MachineInUse | None = None
    _tasks: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)

    async def start(self) -> Machine:
        """Authenticate and go online, waiting for the server if it is down.

        While another machine process runs with the same token this one waits
        as a standby, and takes over once that one stops or its lease runs out.
        """
        told = False
        while True:
            try:
                machine = await retry_until_reachable(
                    lambda: self.backend.go_online(self.token, str(self.root), self.lease),
                    self.backoff,
                    self.connection,
                )
                break
            except MachineInUse as exc:
                if not told:
                    self.report(f"{exc.message} Waiting until it stops (Ctrl-C to give up).")
                    told = True
                await anyio.sleep(self.heartbeat_interval.total_seconds())
        self.report(f"Machine {machine.name!r} is online (root: {self.root}).")
        return machine

    async def run(self) -> None:
        """Heartbeat and follow the machine's workers until cancelled (or the lease is lost)."""
        async with anyio.create_task_group() as tg:
            self._tasks = tg.cancel_scope
            tg.start_soon(self._heartbeat_loop)
            tg.start_soon(self._follow_workers)
            if self.sessions is not None:
                tg.start_soon(self._keep_reachable, self.sessions.run)
            if self.commands is not None:
                tg.start_soon(self._keep_reachable, self.commands.run)
        if self._lost is not None:
            raise self._lost

    async def stop(self) -> None:
        """Stop the agents, then mark the machine and its workers offline (bounded in time)."""
        if self.runtime is not None:
            with anyio.move_on_after(15, shield=True):
                await self.runtime.stop()
        with anyio.move_on_after(5, shield=True):
            try:
                await self.backend.go_offline(self.token, self.lease)
                self.report("Machine is offline.")
            except OrchestratorError as exc:
                self.report(f"Could not mark the machine offline: {exc.message}")

    async def beat(self) -> None:
        """One heartbeat for the machine and each of its approved workers."""
        await self.backend.heartbeat(self.token, self.lease)
        for worker in list(self.workers.values()):
            await self._beat_worker(worker)

    async def _beat_worker(self, worker: Worker) -> None:
        if worker.status is WorkerStatus.PENDING_AUTHORIZATION:
            self._announce(worker, "is waiting for approval in the web UI")
            return
        try:
            problem = directory_problem(self.root, worker)
            if problem is not None:
                self._announce(worker, f"cannot run: {problem}")
                if worker.status is WorkerStatus.ONLINE or worker.problem != problem:
                    # Offline with the reason: its owner sees why, and messages are refused.
                    offline = self.backend.worker_offline
                    self._record(await offline(self.token, worker.worker_id, problem))
                return
            updated = await self.backend.worker_heartbeat(self.token, worker.worker_id)
        except (InvalidTransition, NotFound):
            # Changed under us (removed, or back to pending); the watch brings the new state.
            if self.workers.pop(worker.worker_id, None) is not None:
                self._workers_changed()
            return
        self._record(updated)
        if worker.status is not WorkerStatus.ONLINE or not worker.models:
            await self.sync_models(updated)
        self._announce(worker, "is online")

    async def sync_models(self, worker: Worker) -> None:
        """Store the models the agent offers in the worker's directory."""
        directory = worker_directory(self.root, worker)
        if self.runtime is None or directory is None:
            return
        try:
            # The agent started here stays warm for the worker's sessions, with its policy.
            found = await self.runtime.list_models(
                directory, permission_policy=worker.permission_policy
            )
            models = [str(m) for m in found]
            self.workers[worker.worker_id] = await self.backend.update_worker_models(
                self.token, worker.worker_id, models
            )
        except OrchestratorError as exc:
            self.report(f"Could not read the models of worker {worker.worker_id}: {exc.message}")
            return
        try:
            catalog = await self.runtime.list_agents(
                directory, permission_policy=worker.permission_policy
            )
            self.workers[worker.worker_id] = await update_worker_agents(
                self.backend, self.token, worker.worker_id, catalog
            )
        except OrchestratorError as exc:
            self.report(f"Could not read the agents of worker {worker.worker_id}: {exc.message}")

    def _record(self, worker: Worker) -> None:
        before = self.workers.get(worker.worker_id)
        self.workers[worker.worker_id] = worker
        if before is None or before.status is not worker.status:
            self._workers_changed()

    def _workers_changed(self) -> None:
        if self.sessions is not None:
            self.sessions.workers_changed()

    def _announce(self, worker: Worker, what: str) -> None:
        if self._announced.get(worker.worker_id) != what:
            self._announced[worker.worker_id] = what
            label = worker.name or worker.directory or "(root)"
            self.report(f"Worker {label} [{worker.worker_id}] {what}.")

    async def _heartbeat_loop(self) -> None:
        while True:
            wait = self.heartbeat_interval.total_seconds()
            try:
                await self.beat()
                self.connection.back()
            except TRANSIENT as exc:
                self.connection.lost(exc, wait)
            except MachineInUse as exc:
                # Taken over after this process's lease ran out: stop, do not fight.
                self._lost = exc
                self._tasks.cancel()
                return
            await anyio.sleep(wait)

    async def _follow_workers(self) -> None:
        async def follow() -> None:
            async for workers in self.backend.watch_own_workers(self.token):
                self.connection.back()
                await self._apply(workers)

        await self._keep_reachable(follow)

    async def _keep_reachable(self, loop: Callable[[], Awaitable[None]]) -> None:
        await keep_reachable(loop, self.backoff, self.connection)

    async def _apply(self, workers: list[Worker]) -> None:
        current = {w.worker_id: w for w in workers}
        for gone in set(self.workers) - set(current):
            self._announced.pop(gone, None)
            self.report(f"Worker [{gone}] was removed.")
        self.workers = current
        self._workers_changed()
        for worker in workers:
            if worker.status is not WorkerStatus.ONLINE:
                await self._beat_worker(worker)

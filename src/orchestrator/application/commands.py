"""The machine's command runner: directory commands from the backend, run on the workspace.

It follows ``watch_commands``: each pending command is claimed (exactly once,
the backend sees to that) and run, several at once up to ``max_concurrent``.
A cancel request stops the running command (a clone's git is killed and its
half-made folder removed) and ends it as failed. Progress is throttled to one
backend write per ``progress_interval``. Everything it needs is in the
backend, so a restarted machine simply carries on with what is pending.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import anyio
import anyio.abc
import attrs

from orchestrator.application.retry import Backoff, Connection
from orchestrator.domain.commands import (
    CANCELLED,
    MAX_ERROR_LENGTH,
    Command,
    CommandKind,
    CommandOutcome,
    CommandResult,
    CommandStatus,
)
from orchestrator.domain.errors import BackendUnavailable, Conflict, NotFound, OrchestratorError
from orchestrator.domain.ids import CommandId, MachineToken
from orchestrator.domain.ports import CommandMachineBackend
from orchestrator.domain.workspace import Workspace

log = logging.getLogger(__name__)

STOPPED = "The machine process stopped while this command ran."
CRASHED = "The command failed unexpectedly on the machine: {error}"


@attrs.define
class _Throttle:
    """Passes progress on at most once per ``interval`` seconds; keeps the latest for a flush."""

    runner: CommandRunner
    command_id: CommandId
    interval: float
    last_sent: float = -math.inf
    sent: tuple[int, str] | None = None
    latest: tuple[int, str] | None = None

    async def __call__(self, percent: int, line: str) -> None:
        self.latest = (percent, line)
        if anyio.current_time() - self.last_sent >= self.interval:
            await self.flush()

    async def flush(self) -> None:
        if self.latest is None or self.latest == self.sent:
            return
        self.sent, self.last_sent = self.latest, anyio.current_time()
        await self.runner.send_progress(self.command_id, *self.latest)


@attrs.define
class CommandRunner:
    """Runs the directory commands of one machine on its workspace."""

    backend: CommandMachineBackend
    token: MachineToken
    workspace: Workspace
    max_concurrent: int = 4
    progress_interval: float = 0.25
    backoff: Backoff = attrs.Factory(Backoff)
    report: Callable[[str], None] = print
    #: The machine process's connection, so an outage is reported once for all loops.
    connection: Connection = attrs.field(
        default=attrs.Factory(lambda self: Connection(self.report), takes_self=True)
    )
    #: Commands this runner launched that the feed may still show.
    _launched: set[CommandId] = attrs.field(factory=set)
    _scopes: dict[CommandId, anyio.CancelScope] = attrs.field(factory=dict)
    _cancelled: set[CommandId] = attrs.field(factory=set)
    #: Whether killed clones' leftovers were swept (once; ``run`` restarts after outages).
    _swept: bool = False

    async def run(self) -> None:
        """Follow the machine's commands until cancelled (or its token stops working)."""
        if not self._swept:  # before any clone of this process starts, so none is live
            self._swept = True
            removed = await self.workspace.remove_stale_clones()
            if removed:
                self.report(f"Removed {removed} unfinished clone(s) left by an earlier stop.")
        limiter = anyio.CapacityLimiter(self.max_concurrent)
        failure: OrchestratorError | None = None
        async with anyio.create_task_group() as tg:
            try:
                await self._follow(tg, limiter)
            except OrchestratorError as exc:
                failure = exc  # raised bare below, not inside the task group's ExceptionGroup
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _follow(self, tg: anyio.abc.TaskGroup, limiter: anyio.CapacityLimiter) -> None:
        # Reconnect here rather than in the caller: commands already running keep running.
        attempt = 0
        while True:
            started = anyio.current_time()
            try:
                async for commands in self.backend.watch_commands(self.token):
                    self.connection.back()
                    self.apply(commands, tg, limiter)
                return
            except BackendUnavailable as exc:
                if anyio.current_time() - started > self.backoff.cap:
                    attempt = 0  # it had been working: start the backoff over
                wait = max(self.backoff.delay(attempt), 0.2)
                self.connection.lost(exc, wait)
                attempt += 1
                await anyio.sleep(wait)

    def apply(
        self, commands: list[Command], tg: anyio.abc.TaskGroup, limiter: anyio.CapacityLimiter
    ) -> None:
        """Launch the new pending commands and stop the ones whose owner cancelled them."""
        self._launched &= {c.command_id for c in commands} | set(self._scopes)
        for command in commands:
            command_id = command.command_id
            scope = self._scopes.get(command_id)
            if command.cancel_requested and scope is not None:
                self._cancelled.add(command_id)
                scope.cancel()
            if command.status is CommandStatus.PENDING and command_id not in self._launched:
                self._launched.add(command_id)
                tg.start_soon(self._execute, command, limiter)

    async def _execute(self, command: Command, limiter: anyio.CapacityLimiter) -> None:
        command_id = command.command_id
        async with limiter:
            try:
                claimed = await self.backend.claim_command(self.token, command_id)
            except (Conflict, NotFound):
                return  # cancelled or taken meanwhile; the feed says what is left
            except OrchestratorError as exc:
                self._launched.discard(command_id)  # claimed again when the feed shows it
                self.report(f"Could not start command {command_id}: {exc.message}")
                return
            await self._run_claimed(claimed)

    async def _run_claimed(self, command: Command) -> None:
        command_id = command.command_id
        throttle = _Throttle(self, command_id, self.progress_interval)
        result: CommandResult | None = None
        error: str | None = None
        scope = self._scopes[command_id] = anyio.CancelScope()
        try:
            with scope:
                if command.cancel_requested:
                    scope.cancel()
                try:
                    result = await self._perform(command, throttle)
                except OrchestratorError as exc:
                    error = exc.message
                except Exception as exc:
                    log.exception("command %s failed", command_id)
                    error = CRASHED.format(error=exc)
            if scope.cancelled_caught or command_id in self._cancelled:
                result, error = None, CANCELLED
            else:
                await throttle.flush()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._finish(command, None, STOPPED, retry=False)
            raise
        finally:
            self._scopes.pop(command_id, None)
            self._cancelled.discard(command_id)
        await self._finish(command, result, error)

    async def _perform(self, command: Command, progress: _Throttle) -> CommandResult:
        arguments = command.arguments
        if command.kind is CommandKind.LIST_DIR:
            return await self.workspace.list_dir(arguments.path, arguments.cursor)
        if command.kind is CommandKind.MKDIR:
            return await self.workspace.make_dir(arguments.path, arguments.parents)
        return await self.workspace.git_clone(arguments.url or "", arguments.path, progress)

    async def send_progress(self, command_id: CommandId, percent: int, line: str) -> None:
        """Record progress; a failure here never stops the command itself."""
        try:
            await self.backend.report_progress(self.token, command_id, percent, line)
        except OrchestratorError as exc:
            log.info("could not record progress of %s: %s", command_id, exc.message)

    async def _finish(
        self,
        command: Command,
        result: CommandResult | None,
        error: str | None,
        *,
        retry: bool = True,
    ) -> None:
        if error is not None:
            error = error[:MAX_ERROR_LENGTH]
        attempt = 0
        while True:
            try:
                await self.backend.finish_command(
                    self.token, command.command_id, CommandOutcome(result, error)
                )
                self.connection.back()
                break
            except BackendUnavailable as exc:
                if not retry:
                    return
                wait = max(self.backoff.delay(attempt), 0.2)
                self.connection.lost(exc, wait)
                attempt += 1
                await anyio.sleep(wait)
            except OrchestratorError as exc:  # cancelled meanwhile, machine deleted, ...
                self.report(f"Command {command.command_id} could not be finished: {exc.message}")
                return
        where = command.arguments.path or "(root)"
        outcome = "done" if error is None else f"failed: {error}"
        self.report(f"Command {command.kind} {where} [{command.command_id}] {outcome}")

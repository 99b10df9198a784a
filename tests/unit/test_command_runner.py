"""The machine's command runner against the in-memory backend and the fake workspace."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path

import anyio
import attrs
import pytest

from orchestrator.application.commands import STOPPED, CommandRunner
from orchestrator.application.retry import Backoff
from orchestrator.domain.commands import (
    CANCELLED,
    Command,
    CommandArguments,
    CommandKind,
    CommandStatus,
    DirEntry,
    EntryKind,
)
from orchestrator.domain.errors import AuthenticationFailed, BackendUnavailable, Conflict
from orchestrator.domain.ids import CommandId, MachineId, MachineToken, UserId
from orchestrator.testing import FakeWorkspace, InMemoryBackend
from tests.unit._machine import quick_machine_process

pytestmark = pytest.mark.anyio

URL = "https://example.com/acme/app.git"


@attrs.define
class Stage:
    backend: InMemoryBackend
    user: UserId
    machine_id: MachineId
    token: MachineToken
    workspace: FakeWorkspace
    lines: list[str]

    def runner(self, **options: object) -> CommandRunner:
        return CommandRunner(
            self.backend,
            self.token,
            self.workspace,
            backoff=Backoff(base=0.001, cap=0.01),
            report=self.lines.append,
            **options,  # type: ignore[arg-type]
        )

    async def send(self, kind: CommandKind, path: str, **arguments: object) -> Command:
        return await self.backend.create_command(
            self.user,
            self.machine_id,
            kind,
            CommandArguments(path, **arguments),  # type: ignore[arg-type]
        )

    async def clone(self, path: str = "app") -> Command:
        return await self.send(CommandKind.GIT_CLONE, path, url=URL)

    async def wait(
        self, command: Command, done: Callable[[Command], bool] = lambda c: c.finished
    ) -> Command:
        with anyio.fail_after(5):
            while True:
                current = await self.backend.get_command(self.user, command.command_id)
                if done(current):
                    return current
                await anyio.sleep(0.005)


@pytest.fixture
async def stage() -> Stage:
    backend = InMemoryBackend()
    user = await backend.create_user("alice", "plain$pw")
    machine, token = await backend.create_machine(user.user_id, "laptop")
    await backend.go_online(token, "/srv")
    return Stage(backend, user.user_id, machine.machine_id, token, FakeWorkspace(), [])


@pytest.fixture
async def running(stage: Stage) -> AsyncIterator[Stage]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(stage.runner(progress_interval=0).run)
        yield stage
        tg.cancel_scope.cancel()


async def test_each_kind_runs_on_the_workspace_and_finishes_done(running: Stage) -> None:
    """mkdir, list_dir and git_clone end done with the workspace's result."""
    made = await running.wait(await running.send(CommandKind.MKDIR, "src"))
    assert (made.status, made.result and made.result.path) == (CommandStatus.DONE, "src")
    listed = await running.wait(await running.send(CommandKind.LIST_DIR, ""))
    assert listed.result is not None
    assert listed.result.entries == (DirEntry("src", EntryKind.DIR),)
    cloned = await running.wait(await running.clone("src/app"))
    assert (cloned.status, cloned.progress) == (CommandStatus.DONE, 100)
    assert cloned.progress_line == "Resolving deltas: 100% (3/3), done."
    assert "src/app" in running.workspace.folders
    assert running.workspace.calls[0] == ("make_dir", "src", "False")
    assert any(line.startswith("Command git_clone src/app") for line in running.lines)


async def test_the_runner_sweeps_stale_clones_once_before_following_commands(
    stage: Stage,
) -> None:
    """At start the runner removes killed clones' leftovers once and says how many."""
    stage.workspace.stale_clones = 2
    runner = stage.runner()
    for folder in ("one", "two"):  # the machine process runs it again after an outage
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.run)
            made = await stage.wait(await stage.send(CommandKind.MKDIR, folder))
            tg.cancel_scope.cancel()
        stage.workspace.stale_clones = 1
    assert made.status == CommandStatus.DONE
    assert stage.workspace.sweeps == 1
    assert "Removed 2 unfinished clone(s) left by an earlier stop." in stage.lines


async def test_a_refusal_of_the_workspace_fails_the_command_with_its_sentence(
    running: Stage,
) -> None:
    """A workspace error ends the command failed with exactly that sentence."""
    running.workspace.fail_with = Conflict("A folder named 'src' already exists.")
    failed = await running.wait(await running.send(CommandKind.MKDIR, "src"))
    assert (failed.status, failed.error) == (
        CommandStatus.FAILED,
        "A folder named 'src' already exists.",
    )


async def test_progress_reaches_the_backend_while_the_clone_runs(running: Stage) -> None:
    """Progress steps are recorded while the clone waits; the owner sees them live."""
    running.workspace.gate = anyio.Event()
    command = await running.clone()
    seen = await running.wait(command, lambda c: c.progress == 80)
    assert (seen.status, seen.progress_line) == (
        CommandStatus.RUNNING,
        "Resolving deltas: 100% (3/3), done.",
    )
    running.workspace.gate.set()
    assert (await running.wait(command)).status is CommandStatus.DONE


async def test_progress_is_throttled(stage: Stage) -> None:
    """With a long interval only the first step is sent at once; the last is flushed at the end."""
    stage.workspace.gate = anyio.Event()
    seen: list[int] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(stage.runner(progress_interval=60).run)
        command = await stage.clone()
        updates = stage.backend.watch_command(stage.user, command.command_id)
        with anyio.fail_after(5):
            async for current in updates:
                seen.append(current.progress)
                if current.progress == 10:
                    stage.workspace.gate.set()
                if current.finished:
                    break
        await updates.aclose()
        tg.cancel_scope.cancel()
    assert 45 not in seen
    assert seen[-1] == 100
    final = await stage.backend.get_command(stage.user, command.command_id)
    assert final.progress_line == "Resolving deltas: 100% (3/3), done."


async def test_cancel_stops_a_running_clone(running: Stage) -> None:
    """A cancel request cancels the clone on the workspace and fails the command."""
    running.workspace.gate = anyio.Event()
    command = await running.clone()
    await running.wait(command, lambda c: c.status is CommandStatus.RUNNING)
    await running.backend.cancel_command(running.user, command.command_id)
    cancelled = await running.wait(command)
    assert (cancelled.status, cancelled.error) == (CommandStatus.FAILED, CANCELLED)
    assert running.workspace.cancelled == ["app"]
    assert "app" not in running.workspace.folders


async def test_commands_run_at_once_but_bounded(stage: Stage) -> None:
    """With max_concurrent=2 four clones run two at a time; the others wait pending."""
    stage.workspace.gate = anyio.Event()
    clones = [await stage.clone(f"app{n}") for n in range(4)]
    async with anyio.create_task_group() as tg:
        tg.start_soon(stage.runner(max_concurrent=2).run)
        await stage.wait(clones[1], lambda c: c.status is CommandStatus.RUNNING)
        await anyio.sleep(0.05)
        statuses = [
            (await stage.backend.get_command(stage.user, c.command_id)).status for c in clones
        ]
        assert statuses.count(CommandStatus.RUNNING) == 2
        assert statuses.count(CommandStatus.PENDING) == 2
        stage.workspace.gate.set()
        for command in clones:
            assert (await stage.wait(command)).status is CommandStatus.DONE
        tg.cancel_scope.cancel()
    assert stage.workspace.most_at_once == 2


async def test_a_command_claimed_elsewhere_is_left_alone(stage: Stage) -> None:
    """A command another process claimed first is not run here."""
    command = await stage.send(CommandKind.MKDIR, "src")
    runner = stage.runner()
    await stage.backend.claim_command(stage.token, command.command_id)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runner.run)
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert stage.workspace.calls == []
    current = await stage.backend.get_command(stage.user, command.command_id)
    assert current.status is CommandStatus.RUNNING


async def test_a_stopped_runner_fails_what_it_was_running(stage: Stage) -> None:
    """Cancelling the runner mid-clone ends the command failed, saying the machine stopped."""
    stage.workspace.gate = anyio.Event()
    command = await stage.clone()
    async with anyio.create_task_group() as tg:
        tg.start_soon(stage.runner().run)
        await stage.wait(command, lambda c: c.status is CommandStatus.RUNNING)
        tg.cancel_scope.cancel()
    stopped = await stage.backend.get_command(stage.user, command.command_id)
    assert (stopped.status, stopped.error) == (CommandStatus.FAILED, STOPPED)


async def test_the_machine_process_runs_commands_waiting_from_before_it_started(
    stage: Stage, tmp_path: Path
) -> None:
    """Commands sent while the machine was offline run once its process is up."""
    await stage.backend.go_offline(stage.token)
    command = await stage.send(CommandKind.MKDIR, "later")
    process = quick_machine_process(stage.backend, stage.token, tmp_path, stage.lines)
    process.commands = stage.runner()
    await process.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(process.run)
        done = await stage.wait(command)
        tg.cancel_scope.cancel()
    assert done.status is CommandStatus.DONE
    assert "later" in stage.workspace.folders
    assert await stage.backend.get_command(stage.user, CommandId(command.command_id)) == done


@attrs.define(eq=False)
class FlakyBackend(InMemoryBackend):
    """The in-memory backend whose command subscription fails its first ``failures`` times."""

    failures: int = 1

    def watch_commands(self, token: MachineToken) -> AsyncGenerator[list[Command], None]:
        if self.failures:
            self.failures -= 1
            return self._unreachable()
        return super().watch_commands(token)

    async def _unreachable(self) -> AsyncGenerator[list[Command], None]:
        raise BackendUnavailable("Cannot reach the server.")
        yield []  # pragma: no cover - makes this an async generator


async def test_the_runner_reconnects_when_the_backend_is_unreachable() -> None:
    """A failing subscription is retried with backoff; the commands still run."""
    backend = FlakyBackend(failures=2)
    user = await backend.create_user("alice", "plain$pw")
    machine, token = await backend.create_machine(user.user_id, "laptop")
    stage = Stage(backend, user.user_id, machine.machine_id, token, FakeWorkspace(), [])
    command = await stage.send(CommandKind.MKDIR, "src")
    async with anyio.create_task_group() as tg:
        tg.start_soon(stage.runner().run)
        assert (await stage.wait(command)).status is CommandStatus.DONE
        tg.cancel_scope.cancel()
    reconnects = [line for line in stage.lines if "Reconnecting in" in line]
    assert len(reconnects) == 1  # two failed attempts, one outage
    assert "Reconnected." in stage.lines


async def test_a_token_that_stops_working_ends_the_runner_with_that_error(stage: Stage) -> None:
    """AuthenticationFailed leaves run() as itself, not wrapped in an exception group."""
    stage.token = MachineToken(stage.token.machine_id, "sec_wrong")
    with pytest.raises(AuthenticationFailed):
        await stage.runner().run()

"""The backend contract for directory commands as their owner sees them."""

from __future__ import annotations

import pytest

from orchestrator.domain.commands import (
    CANCELLED,
    KEEP_FINISHED_COMMANDS,
    LIST_COMMANDS_LIMIT,
    MAX_PENDING_COMMANDS,
    Command,
    CommandArguments,
    CommandKind,
    CommandOutcome,
    CommandResult,
    CommandStatus,
)
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound, PathOutsideRoot
from orchestrator.domain.git_url import URL_FILE
from orchestrator.domain.ids import CommandId, MachineId, UserId
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory
from tests.contract.test_watch_contract import next_value, watching

pytestmark = pytest.mark.anyio

LIST, MKDIR, CLONE = CommandKind.LIST_DIR, CommandKind.MKDIR, CommandKind.GIT_CLONE
URL = "https://example.com/acme/app.git"


async def mkdir(
    backend: Backend, user: UserId, machine_id: MachineId, path: str = "new"
) -> Command:
    """Queue a mkdir of ``path`` on the machine."""
    return await backend.create_command(user, machine_id, MKDIR, CommandArguments(path))


async def test_create_queues_each_kind_with_normalized_arguments(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Each kind is created pending, with only the arguments it reads, normalized."""
    machine, _ = await new_machine()
    created = [
        await backend.create_command(
            alice, machine.machine_id, LIST, CommandArguments("./src/", cursor="0/a")
        ),
        await backend.create_command(
            alice, machine.machine_id, MKDIR, CommandArguments("a/b", parents=True, url=URL)
        ),
        await backend.create_command(
            alice, machine.machine_id, CLONE, CommandArguments("app", parents=True, url=URL)
        ),
    ]
    assert [c.arguments for c in created] == [
        CommandArguments("src", cursor="0/a"),
        CommandArguments("a/b", parents=True),
        CommandArguments("app", url=URL),
    ]
    for command in created:
        assert (command.machine_id, command.user_id) == (machine.machine_id, alice)
        assert (command.status, command.progress, command.progress_line) == ("pending", 0, None)
        assert (command.result, command.error, command.cancel_requested) == (None, None, False)
        assert (command.started_at, command.finished_at) == (None, None)
        assert await backend.get_command(alice, command.command_id) == command
    assert await backend.list_commands(alice, machine.machine_id) == created[::-1]


@pytest.mark.parametrize(
    ("kind", "arguments", "error", "sentence"),
    [
        (LIST, CommandArguments("../etc"), PathOutsideRoot, "The path must not contain '..'."),
        (
            MKDIR,
            CommandArguments("/tmp/x"),
            PathOutsideRoot,
            "Use a path relative to the machine's root, not an absolute one.",
        ),
        (
            MKDIR,
            CommandArguments("a\x00b"),
            PathOutsideRoot,
            "The path must not contain NUL bytes.",
        ),
        (CLONE, CommandArguments("app", url="file:///srv/repo"), InvalidInput, URL_FILE),
        (CLONE, CommandArguments("", url=URL), InvalidInput, "Choose the folder to clone into."),
    ],
)
async def test_bad_arguments_are_refused_and_nothing_is_queued(
    backend: Backend,
    alice: UserId,
    new_machine: MachineFactory,
    kind: CommandKind,
    arguments: CommandArguments,
    error: type[InvalidInput],
    sentence: str,
) -> None:
    """A refused command is one sentence and leaves no record behind."""
    machine, _ = await new_machine()
    with pytest.raises(error) as caught:
        await backend.create_command(alice, machine.machine_id, kind, arguments)
    assert caught.value.message == sentence
    assert await backend.list_commands(alice, machine.machine_id) == []


async def test_another_users_machine_and_commands_are_not_found(
    backend: Backend, alice: UserId, bob: UserId, new_machine: MachineFactory
) -> None:
    """Bob can neither queue on alice's machine nor see, cancel or watch her commands."""
    machine, _ = await new_machine()
    command = await mkdir(backend, alice, machine.machine_id)
    with pytest.raises(NotFound, match=r"^No such machine\.$"):
        await mkdir(backend, bob, machine.machine_id)
    with pytest.raises(NotFound, match=r"^No such machine\.$"):
        await backend.list_commands(bob, machine.machine_id)
    with pytest.raises(NotFound, match=r"^No such command\.$"):
        await backend.get_command(bob, command.command_id)
    with pytest.raises(NotFound, match=r"^No such command\.$"):
        await backend.cancel_command(bob, command.command_id)
    async with watching(backend.watch_command(bob, command.command_id)) as updates:
        with pytest.raises(NotFound, match=r"^No such command\.$"):
            await next_value(updates)
    with pytest.raises(NotFound):
        await backend.get_command(alice, CommandId("cmd_missing"))
    assert await backend.get_command(alice, command.command_id) == command


async def test_cancel_fails_pending_asks_running_and_refuses_finished(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Pending: failed at once; running: cancel_requested; finished: Conflict."""
    machine, token = await new_machine(online=True)
    waiting = await mkdir(backend, alice, machine.machine_id, "a")
    cancelled = await backend.cancel_command(alice, waiting.command_id)
    assert (cancelled.status, cancelled.error) == (CommandStatus.FAILED, CANCELLED)
    assert cancelled.finished_at is not None
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        await backend.cancel_command(alice, waiting.command_id)
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        await backend.claim_command(token, waiting.command_id)

    running = await mkdir(backend, alice, machine.machine_id, "b")
    await backend.claim_command(token, running.command_id)
    asked = await backend.cancel_command(alice, running.command_id)
    assert (asked.status, asked.cancel_requested) == (CommandStatus.RUNNING, True)
    assert await backend.cancel_command(alice, running.command_id) == asked
    done = await backend.finish_command(token, running.command_id, CommandOutcome(error=CANCELLED))
    assert (done.status, done.error) == (CommandStatus.FAILED, CANCELLED)


async def test_a_machine_holds_a_bounded_number_of_waiting_commands(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Past MAX_PENDING_COMMANDS waiting commands a new one is a Conflict; a cancel frees room."""
    machine, _ = await new_machine()
    first = await mkdir(backend, alice, machine.machine_id, "d0")
    for n in range(1, MAX_PENDING_COMMANDS):
        await mkdir(backend, alice, machine.machine_id, f"d{n}")
    with pytest.raises(Conflict, match=rf"already has {MAX_PENDING_COMMANDS} commands waiting"):
        await mkdir(backend, alice, machine.machine_id, "one-too-many")
    await backend.cancel_command(alice, first.command_id)
    await mkdir(backend, alice, machine.machine_id, "fits-again")


async def test_old_finished_commands_are_dropped_and_lists_are_bounded(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A machine keeps its newest KEEP_FINISHED_COMMANDS finished commands; lists are capped."""
    machine, _ = await new_machine()
    finished = []
    for n in range(KEEP_FINISHED_COMMANDS + 1):
        command = await mkdir(backend, alice, machine.machine_id, f"d{n}")
        finished.append(await backend.cancel_command(alice, command.command_id))
    waiting = await mkdir(backend, alice, machine.machine_id, "last")
    with pytest.raises(NotFound):
        await backend.get_command(alice, finished[0].command_id)
    assert await backend.get_command(alice, finished[1].command_id) == finished[1]
    listed = await backend.list_commands(alice, machine.machine_id)
    assert len(listed) == LIST_COMMANDS_LIMIT
    assert listed[:2] == [waiting, finished[-1]]


async def test_deleting_the_machine_deletes_its_commands(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A deleted machine's commands are gone."""
    machine, _ = await new_machine()
    command = await mkdir(backend, alice, machine.machine_id)
    await backend.delete_machine(alice, machine.machine_id)
    with pytest.raises(NotFound):
        await backend.get_command(alice, command.command_id)


async def test_watch_command_follows_claim_progress_and_finish(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """watch_command yields the command now, then after each change of it."""
    machine, token = await new_machine(online=True)
    command = await backend.create_command(
        alice, machine.machine_id, CLONE, CommandArguments("app", url=URL)
    )
    async with watching(backend.watch_command(alice, command.command_id)) as updates:
        assert await next_value(updates) == command
        claimed = await backend.claim_command(token, command.command_id)
        assert await next_value(updates) == claimed
        line = "Receiving objects:  45% (45/100)"
        progressed = await backend.report_progress(token, command.command_id, 45, line)
        assert await next_value(updates) == progressed
        assert (progressed.progress, progressed.progress_line) == (45, line)
        done = await backend.finish_command(
            token, command.command_id, CommandOutcome(result=CommandResult("app"))
        )
        assert await next_value(updates) == done
        assert (done.status, done.progress, done.progress_line) == ("done", 100, line)

"""The backend contract for directory commands as the machine that runs them sees them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.domain.commands import (
    CANCELLED,
    RESTARTED,
    CommandArguments,
    CommandOutcome,
    CommandResult,
    CommandStatus,
    DirEntry,
    EntryKind,
)
from orchestrator.domain.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import MachineToken, UserId
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory
from tests.contract.test_command_contract import CLONE, LIST, MKDIR, URL, mkdir
from tests.contract.test_watch_contract import next_value, watching

pytestmark = pytest.mark.anyio

RUNNING, DONE, FAILED = CommandStatus.RUNNING, CommandStatus.DONE, CommandStatus.FAILED

LISTING = CommandResult(
    "src",
    (
        DirEntry("app", EntryKind.DIR, None, datetime(2025, 1, 2, 3, 4, 5, 6000, UTC), True),
        DirEntry("notes ü.md", EntryKind.FILE, 1234, datetime(2024, 12, 31, tzinfo=UTC)),
        DirEntry("link", EntryKind.SYMLINK, 7, None),
    ),
    total=1003,
    next_cursor="1/notes ü.md",
)


async def open_commands(backend: Backend, token: MachineToken) -> list[object]:
    """The machine's current pending and running commands (the first value of its subscription)."""
    async with watching(backend.watch_commands(token)) as updates:
        return list(await next_value(updates))


async def test_the_machine_sees_its_pending_and_running_commands_oldest_first(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """watch_commands lists this machine's unfinished commands only, oldest first."""
    machine, token = await new_machine(online=True)
    other, other_token = await new_machine("desktop", online=True)
    first = await mkdir(backend, alice, machine.machine_id, "a")
    second = await mkdir(backend, alice, machine.machine_id, "b")
    third = await mkdir(backend, alice, machine.machine_id, "c")
    elsewhere = await mkdir(backend, alice, other.machine_id, "x")
    await backend.cancel_command(alice, third.command_id)
    claimed = await backend.claim_command(token, second.command_id)
    assert await open_commands(backend, token) == [first, claimed]
    assert await open_commands(backend, other_token) == [elsewhere]


async def test_watch_commands_yields_again_on_each_change(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A new command, a claim, a cancel request and a finish each wake the machine."""
    machine, token = await new_machine(online=True)
    async with watching(backend.watch_commands(token)) as updates:
        assert await next_value(updates) == []
        command = await mkdir(backend, alice, machine.machine_id)
        assert await next_value(updates) == [command]
        claimed = await backend.claim_command(token, command.command_id)
        assert await next_value(updates) == [claimed]
        asked = await backend.cancel_command(alice, command.command_id)
        assert await next_value(updates) == [asked]
        await backend.finish_command(token, command.command_id, CommandOutcome(error=CANCELLED))
        assert await next_value(updates) == []


async def test_a_command_is_claimed_exactly_once(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """The first claim makes it running; a second one is a Conflict."""
    machine, token = await new_machine(online=True)
    command = await mkdir(backend, alice, machine.machine_id)
    claimed = await backend.claim_command(token, command.command_id)
    assert (claimed.status, claimed.started_at is not None) == (RUNNING, True)
    with pytest.raises(Conflict, match=r"^This command has already been claimed\.$"):
        await backend.claim_command(token, command.command_id)
    assert await backend.get_command(alice, command.command_id) == claimed


async def test_only_the_commands_machine_may_touch_it(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Another machine gets NotFound; a wrong secret gets AuthenticationFailed."""
    machine, token = await new_machine(online=True)
    _, other = await new_machine("desktop", online=True)
    command = await mkdir(backend, alice, machine.machine_id)
    wrong = MachineToken(token.machine_id, "sec_wrong")
    with pytest.raises(NotFound, match=r"^No such command\.$"):
        await backend.claim_command(other, command.command_id)
    with pytest.raises(AuthenticationFailed):
        await backend.claim_command(wrong, command.command_id)
    await backend.claim_command(token, command.command_id)
    with pytest.raises(NotFound):
        await backend.report_progress(other, command.command_id, 5, "x")
    with pytest.raises(NotFound):
        await backend.finish_command(other, command.command_id, CommandOutcome(error="x"))
    with pytest.raises(AuthenticationFailed):
        await backend.finish_command(wrong, command.command_id, CommandOutcome(error="x"))
    async with watching(backend.watch_commands(wrong)) as updates:
        with pytest.raises(AuthenticationFailed):
            await next_value(updates)


async def test_progress_is_recorded_only_while_running_and_bounded(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Progress needs a claimed, unfinished command, 0-100 and a bounded line."""
    machine, token = await new_machine(online=True)
    command = await backend.create_command(
        alice, machine.machine_id, CLONE, CommandArguments("app", url=URL)
    )
    with pytest.raises(Conflict, match=r"^This command has not been claimed yet\.$"):
        await backend.report_progress(token, command.command_id, 1, "x")
    await backend.claim_command(token, command.command_id)
    for progress, line in ((101, "x"), (-1, "x"), (5, "x" * 501)):
        with pytest.raises(InvalidInput):
            await backend.report_progress(token, command.command_id, progress, line)
    updated = await backend.report_progress(token, command.command_id, 12, "Receiving objects")
    assert (updated.progress, updated.progress_line) == (12, "Receiving objects")
    await backend.finish_command(token, command.command_id, CommandOutcome(error="git failed."))
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        await backend.report_progress(token, command.command_id, 50, "x")


async def test_a_listing_round_trips_through_the_backend(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A finished list_dir keeps its page exactly: entries, kinds, sizes, times, cursor."""
    machine, token = await new_machine(online=True)
    command = await backend.create_command(alice, machine.machine_id, LIST, CommandArguments("src"))
    await backend.claim_command(token, command.command_id)
    done = await backend.finish_command(token, command.command_id, CommandOutcome(result=LISTING))
    assert (done.status, done.result, done.error, done.progress) == (DONE, LISTING, None, 100)
    assert done.finished_at is not None
    assert await backend.get_command(alice, command.command_id) == done


async def test_finish_happens_once_with_one_fitting_outcome(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Exactly one of result and error; results fit the kind; a second finish is a Conflict."""
    machine, token = await new_machine(online=True)
    command = await mkdir(backend, alice, machine.machine_id)
    with pytest.raises(Conflict, match=r"not been claimed yet"):
        await backend.finish_command(
            token, command.command_id, CommandOutcome(result=CommandResult("new"))
        )
    await backend.claim_command(token, command.command_id)
    with pytest.raises(InvalidInput, match=r"either a result or an error"):
        await backend.finish_command(token, command.command_id, CommandOutcome())
    with pytest.raises(InvalidInput, match=r"either a result or an error"):
        await backend.finish_command(
            token, command.command_id, CommandOutcome(result=CommandResult("new"), error="x")
        )
    with pytest.raises(InvalidInput, match=r"^Only a list_dir result has entries\.$"):
        await backend.finish_command(token, command.command_id, CommandOutcome(result=LISTING))
    with pytest.raises(InvalidInput):
        await backend.finish_command(token, command.command_id, CommandOutcome(error=" "))
    failed = await backend.finish_command(
        token, command.command_id, CommandOutcome(error="A folder named new already exists.")
    )
    assert (failed.status, failed.error, failed.result) == (
        FAILED,
        "A folder named new already exists.",
        None,
    )
    with pytest.raises(Conflict, match=r"^This command has already finished\.$"):
        await backend.finish_command(
            token, command.command_id, CommandOutcome(result=CommandResult("new"))
        )


async def test_a_command_sent_while_offline_waits_for_the_machine(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A command for an offline machine stays pending and is there when the machine comes back."""
    machine, token = await new_machine()
    command = await mkdir(backend, alice, machine.machine_id)
    assert (await backend.get_command(alice, command.command_id)).status == "pending"
    await backend.go_online(token, "/home/alice/code")
    assert await open_commands(backend, token) == [command]
    await backend.claim_command(token, command.command_id)


async def test_a_restart_never_runs_a_claimed_command_twice(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """On go_online, running mkdir/git_clone fail, running list_dir is pending again."""
    machine, token = await new_machine(online=True)
    made = await mkdir(backend, alice, machine.machine_id, "made")
    cloned = await backend.create_command(
        alice, machine.machine_id, CLONE, CommandArguments("app", url=URL)
    )
    listed = await backend.create_command(alice, machine.machine_id, LIST, CommandArguments(""))
    stopped = await backend.create_command(alice, machine.machine_id, LIST, CommandArguments("x"))
    waiting = await mkdir(backend, alice, machine.machine_id, "waiting")
    for command in (made, cloned, listed, stopped):
        await backend.claim_command(token, command.command_id)
    await backend.report_progress(token, listed.command_id, 30, "reading")
    await backend.cancel_command(alice, stopped.command_id)

    await backend.go_online(token, "/home/alice/code")  # the process died and started again

    for command in (made, cloned):
        after = await backend.get_command(alice, command.command_id)
        assert (after.status, after.error) == (FAILED, RESTARTED)
        assert after.finished_at is not None
    again = await backend.get_command(alice, listed.command_id)
    assert (again.status, again.started_at, again.progress, again.progress_line) == (
        CommandStatus.PENDING,
        None,
        0,
        None,
    )
    cancelled = await backend.get_command(alice, stopped.command_id)
    assert (cancelled.status, cancelled.error) == (FAILED, CANCELLED)
    assert await open_commands(backend, token) == [again, waiting]
    with pytest.raises(Conflict):
        await backend.claim_command(token, made.command_id)
    await backend.claim_command(token, listed.command_id)


async def test_heartbeats_leave_running_commands_alone(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """Only a (re)start recovers commands; a heartbeat of the live process does not."""
    machine, token = await new_machine(online=True)
    command = await backend.create_command(alice, machine.machine_id, MKDIR, CommandArguments("a"))
    claimed = await backend.claim_command(token, command.command_id)
    await backend.heartbeat(token)
    assert await backend.get_command(alice, command.command_id) == claimed

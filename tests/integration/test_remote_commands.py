"""Directory commands through RemoteMachineBackend against the real app on loopback with SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.system import Argon2Hasher
from orchestrator.application import accounts
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandOutcome,
    CommandResult,
    CommandStatus,
    DirEntry,
    EntryKind,
)
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import MachineToken
from tests.integration.test_remote_support import LiveServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _queued(
    server: LiveServer, remote: RemoteMachineBackend, kind: CommandKind, path: str
) -> tuple[MachineToken, Command]:
    """alice's machine online through ``remote``, and a ``kind`` command on ``path`` queued."""
    user = await accounts.create_user(
        server.backend, Argon2Hasher(fast=True), "alice", "correct horse battery"
    )
    _, token = await server.backend.create_machine(user.user_id, "laptop")
    await remote.go_online(token, "/srv")
    command = await server.backend.create_command(
        user.user_id, token.machine_id, kind, CommandArguments(path)
    )
    return token, command


async def test_a_listing_travels_the_whole_machine_api(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """Subscribe, claim, report progress and finish with a listing, all over HTTP/WebSocket."""
    token, command = await _queued(server, remote, CommandKind.LIST_DIR, "src")
    updates = remote.watch_commands(token)
    with anyio.fail_after(10):
        assert await anext(updates) == [command]
    claimed = await remote.claim_command(token, command.command_id)
    assert claimed.status is CommandStatus.RUNNING
    with anyio.fail_after(10):
        assert await anext(updates) == [claimed]
    with pytest.raises(Conflict, match=r"^This command has already been claimed\.$"):
        await remote.claim_command(token, command.command_id)
    progressed = await remote.report_progress(token, command.command_id, 50, "reading ü")
    assert (progressed.progress, progressed.progress_line) == (50, "reading ü")
    with pytest.raises(InvalidInput):
        await remote.report_progress(token, command.command_id, 101, "x")
    listing = CommandResult(
        "src",
        (
            DirEntry("app", EntryKind.DIR, None, datetime(2025, 1, 2, tzinfo=UTC), True),
            DirEntry("ü.txt", EntryKind.FILE, 3, datetime(2025, 1, 3, 4, 5, 6, 7000, UTC)),
        ),
        total=2,
    )
    done = await remote.finish_command(token, command.command_id, CommandOutcome(result=listing))
    assert (done.status, done.result) == (CommandStatus.DONE, listing)
    assert await server.backend.get_command(command.user_id, command.command_id) == done
    with anyio.fail_after(10):
        while await anext(updates):  # the progress update may come first
            pass
    await updates.aclose()  # type: ignore[attr-defined]


async def test_machine_api_refusals_keep_their_type_and_sentence(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """Errors of the command calls arrive as the same exceptions with the same sentences."""
    token, command = await _queued(server, remote, CommandKind.MKDIR, "a")
    with pytest.raises(Conflict, match=r"^This command has not been claimed yet\.$"):
        await remote.finish_command(token, command.command_id, CommandOutcome(error="x"))
    await remote.claim_command(token, command.command_id)
    with pytest.raises(InvalidInput, match=r"either a result or an error"):
        await remote.finish_command(token, command.command_id, CommandOutcome())
    with pytest.raises(NotFound, match=r"^No such command\.$"):
        await remote.claim_command(token, "cmd_unknown")  # type: ignore[arg-type]
    failed = await remote.finish_command(
        token, command.command_id, CommandOutcome(error="No space left.")
    )
    assert (failed.status, failed.error) == (CommandStatus.FAILED, "No space left.")

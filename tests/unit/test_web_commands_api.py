"""The browser's directory-command API over the in-memory backend: queue, follow, cancel, refuse."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.domain.commands import (
    CANCELLED,
    CommandArguments,
    CommandKind,
    CommandOutcome,
    CommandResult,
    DirEntry,
    EntryKind,
)
from orchestrator.domain.git_url import URL_CREDENTIALS, URL_FILE, URL_OPTION
from orchestrator.domain.ids import CommandId
from orchestrator.entrypoints.web.commands_api import BAD_WAIT, QUEUED_NOTICE
from tests.unit.test_web_support import Chat, next_sse

pytestmark = pytest.mark.anyio

URL = "https://example.com/acme/app.git"


def _machine(owner: Chat) -> str:
    return owner.token.machine_id


async def _queue(owner: Chat, body: dict[str, Any]) -> tuple[int, Any]:
    return await owner.post(f"/api/machines/{_machine(owner)}/commands", body)


async def test_each_kind_is_queued_and_listed_newest_first(owner: Chat) -> None:
    """POST queues list_dir, mkdir and git_clone; GET lists them newest first."""
    bodies: list[dict[str, Any]] = [
        {"kind": "list_dir", "path": "src", "cursor": None},
        {"kind": "mkdir", "path": "a/b", "parents": True},
        {"kind": "git_clone", "url": URL, "path": "app"},
    ]
    created = []
    for body in bodies:
        status, answer = await _queue(owner, body)
        assert status == 201, answer
        assert (answer["queued"], answer["command"]["status"]) == (False, "pending")
        assert answer["command"]["finished"] is False
        created.append(answer["command"])
    assert created[1]["arguments"] == {"path": "a/b", "parents": True, "url": None, "cursor": None}
    assert created[2]["arguments"]["url"] == URL
    response = await owner.web.client.get(f"/api/machines/{_machine(owner)}/commands")
    assert [c["command_id"] for c in (await response.json())["commands"]] == [
        c["command_id"] for c in reversed(created)
    ]
    response = await owner.web.client.get(f"/api/commands/{created[0]['command_id']}")
    assert (await response.json())["command"] == created[0]


async def test_a_command_for_an_offline_machine_is_queued_with_a_notice(owner: Chat) -> None:
    """An offline machine's command waits; the answer says so."""
    await owner.web.backend.go_offline(owner.token)
    status, answer = await _queue(owner, {"kind": "mkdir", "path": "later"})
    assert status == 201
    assert (answer["queued"], answer["notice"]) == (True, QUEUED_NOTICE)


@pytest.mark.parametrize(
    ("body", "kind", "sentence"),
    [
        ({"kind": "rm", "path": "x"}, "InvalidInput", "The command kind must be one of"),
        ({"path": "x"}, "InvalidInput", "The field 'kind' is required."),
        ({"kind": "mkdir", "path": "../x"}, "PathOutsideRoot", "The path must not contain '..'."),
        ({"kind": "mkdir", "path": "/etc/x"}, "PathOutsideRoot", "Use a path relative"),
        ({"kind": "mkdir", "path": "a\u0000"}, "PathOutsideRoot", "The path must not contain NUL"),
        ({"kind": "mkdir", "path": "x" * 256}, "PathOutsideRoot", "Each folder name must be at"),
        ({"kind": "mkdir", "path": "x", "parents": "yes"}, "InvalidInput", "The field 'parents'"),
        ({"kind": "mkdir", "path": ""}, "InvalidInput", "Choose a name for the new folder."),
        ({"kind": "git_clone", "path": "a", "url": "-u"}, "InvalidInput", URL_OPTION),
        ({"kind": "git_clone", "path": "a", "url": "ext::sh"}, "InvalidInput", "The ext::"),
        ({"kind": "git_clone", "path": "a", "url": "file:///srv/r"}, "InvalidInput", URL_FILE),
        ({"kind": "git_clone", "path": "a", "url": "/srv/r"}, "InvalidInput", "Local paths"),
        ({"kind": "git_clone", "path": "a", "url": 7}, "InvalidInput", "The field 'url' must"),
        (
            {"kind": "git_clone", "path": "a", "url": "https://alice:s3cret@example.com/app.git"},
            "InvalidInput",
            URL_CREDENTIALS,
        ),
        (
            {"kind": "git_clone", "path": "a", "url": "https://ghp_tok3n@github.com/acme/app"},
            "InvalidInput",
            URL_CREDENTIALS,
        ),
    ],
)
async def test_refusals_are_one_sentence_and_queue_nothing(
    owner: Chat, body: dict[str, Any], kind: str, sentence: str
) -> None:
    """Each bad request is a 400 with one sentence, and no command is created."""
    status, answer = await _queue(owner, body)
    assert status == 400
    assert answer["type"] == kind
    assert answer["error"].startswith(sentence)
    assert owner.web.backend.commands == {}


async def test_someone_elses_machine_and_commands_are_not_found(owner: Chat) -> None:
    """Mallory gets 404 for alice's machine and for her commands."""
    _, answer = await _queue(owner, {"kind": "mkdir", "path": "x"})
    command_id = answer["command"]["command_id"]
    mallory = await owner.web.new_client()
    csrf = await owner.web.sign_in(mallory, "mallory")
    headers = {"X-CSRF-Token": csrf}
    machine = _machine(owner)
    for method, path in [
        ("POST", f"/api/machines/{machine}/commands"),
        ("GET", f"/api/machines/{machine}/commands"),
        ("POST", f"/api/machines/{machine}/tree"),
        ("GET", f"/api/commands/{command_id}"),
        ("POST", f"/api/commands/{command_id}/cancel"),
        ("GET", f"/api/commands/{command_id}/stream"),
    ]:
        response = await mallory.request(
            method, path, json={"kind": "mkdir", "path": "y"}, headers=headers
        )
        assert response.status == 404, path
    command = await owner.web.backend.get_command(owner.user, CommandId(command_id))
    assert command.status == "pending"


async def test_cancel_fails_a_pending_command(owner: Chat) -> None:
    """Cancelling a pending command fails it at once; a second cancel is a Conflict."""
    _, answer = await _queue(owner, {"kind": "mkdir", "path": "x"})
    command_id = answer["command"]["command_id"]
    status, answer = await owner.post(f"/api/commands/{command_id}/cancel")
    assert (status, answer["command"]["status"], answer["command"]["error"]) == (
        200,
        "failed",
        CANCELLED,
    )
    status, answer = await owner.post(f"/api/commands/{command_id}/cancel")
    assert (status, answer["error"]) == (409, "This command has already finished.")


async def test_the_stream_follows_progress_and_ends_when_the_command_does(owner: Chat) -> None:
    """SSE sends the command at once, after each change, and ends after it finishes."""
    backend, token = owner.web.backend, owner.token
    command = await backend.create_command(
        owner.user, token.machine_id, CommandKind.GIT_CLONE, CommandArguments("app", url=URL)
    )
    response = await owner.web.client.get(f"/api/commands/{command.command_id}/stream")
    assert response.status == 200
    first = await next_sse(response)
    assert (first.event, first.data["command"]["status"]) == ("command", "pending")
    await backend.claim_command(token, command.command_id)
    assert (await next_sse(response)).data["command"]["status"] == "running"
    await backend.report_progress(token, command.command_id, 42, "Receiving objects:  40%")
    progressed = (await next_sse(response)).data["command"]
    assert (progressed["progress"], progressed["progress_line"]) == (42, "Receiving objects:  40%")
    await backend.finish_command(
        token, command.command_id, CommandOutcome(result=CommandResult("app"))
    )
    last = (await next_sse(response)).data["command"]
    assert (last["status"], last["progress"], last["finished"]) == ("done", 100, True)
    with anyio.fail_after(5):
        assert await response.content.read() == b""


async def _answer_listings(owner: Chat) -> None:
    """Act as the machine: claim each list_dir and answer it with one folder."""
    backend, token = owner.web.backend, owner.token
    async for commands in backend.watch_commands(token):
        for command in commands:
            if command.status == "pending":
                await backend.claim_command(token, command.command_id)
                entry = DirEntry("src", EntryKind.DIR, None, None, True)
                listing = CommandResult(command.arguments.path, (entry,), 1)
                await backend.finish_command(
                    token, command.command_id, CommandOutcome(result=listing)
                )


async def test_tree_answers_the_listing_when_the_machine_is_quick(owner: Chat) -> None:
    """POST tree queues a list_dir and answers 200 with the page once the machine listed it."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(_answer_listings, owner)
        status, answer = await owner.post(f"/api/machines/{_machine(owner)}/tree", {"path": "."})
        tg.cancel_scope.cancel()
    assert status == 200, answer
    result = answer["command"]["result"]
    assert result["entries"] == [
        {"name": "src", "kind": "dir", "size": None, "modified": None, "is_git_repo": True}
    ]
    assert (result["path"], answer["queued"]) == ("", False)


async def test_tree_answers_202_when_the_machine_is_away(owner: Chat) -> None:
    """With the machine offline, tree answers 202 with the queued command after ``wait``."""
    await owner.web.backend.go_offline(owner.token)
    path = f"/api/machines/{_machine(owner)}/tree"
    status, answer = await owner.post(path, {"path": "src", "wait": 0.05})
    assert status == 202
    assert (answer["command"]["status"], answer["queued"]) == ("pending", True)
    status, answer = await owner.post(path, {"wait": 31})
    assert (status, answer["error"]) == (400, BAD_WAIT)

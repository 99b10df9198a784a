"""Chat through RemoteMachineBackend against the real app on a loopback port with SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from typing import Any, Self

import aiohttp
import anyio
import attrs
import pytest

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.system import Argon2Hasher
from orchestrator.adapters.wire import MACHINE_API_PREFIX
from orchestrator.application import accounts
from orchestrator.domain.chat import (
    MAX_CHUNK_LENGTH,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    MessageStatus,
    PermissionAnswer,
    PermissionStatus,
    SessionUpdate,
    SessionWork,
)
from orchestrator.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OrchestratorError,
    PayloadTooLarge,
    TextGap,
)
from orchestrator.domain.ids import MachineToken, UserId
from orchestrator.domain.model import Worker
from orchestrator.domain.parts import (
    MAX_TOOL_OUTPUT_BYTES,
    StepFinishPart,
    TextAppend,
    TextKind,
    TextPart,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.ports import MachineSide
from orchestrator.domain.replies import PermissionAsk
from tests.integration.harness import PASSWORD, log_in
from tests.integration.test_remote_support import LiveServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

MODEL = "fake/model-a"


@attrs.frozen
class Setup:
    """An owner, their machine (online over HTTP) and one online worker offering MODEL."""

    user: UserId
    token: MachineToken
    worker: Worker


async def _setup(
    server: LiveServer, remote: MachineSide, username: str = "alice", tmp: str = "/srv"
) -> Setup:
    user = await accounts.create_user(server.backend, Argon2Hasher(fast=True), username, PASSWORD)
    machine, token = await server.backend.create_machine(user.user_id, "laptop")
    await remote.go_online(token, tmp)
    worker = await server.backend.add_worker(user.user_id, machine.machine_id, "repo", None)
    await remote.update_worker_models(token, worker.worker_id, [MODEL])
    worker = await remote.worker_heartbeat(token, worker.worker_id)
    return Setup(user.user_id, token, worker)


async def _sign_in(http: aiohttp.ClientSession, server: LiveServer) -> dict[str, str]:
    return {"X-CSRF-Token": await log_in(http, server.url)}


async def _claimed(server: LiveServer, remote: MachineSide, text: str) -> tuple[Setup, ChatMessage]:
    """A new account's session on its worker with ``text`` sent; the reply the machine claimed."""
    setup = await _setup(server, remote)
    session = await server.backend.start_session(setup.user, setup.worker.worker_id, MODEL)
    sent = await server.backend.send_message(setup.user, session.chat_session_id, text)
    return setup, await remote.claim_message(setup.token, sent.message_id)


async def _error(call: Awaitable[object]) -> OrchestratorError:
    with pytest.raises(OrchestratorError) as caught:
        await call
    return caught.value


async def _next_work(updates: AsyncIterator[list[SessionWork]]) -> list[SessionWork]:
    with anyio.fail_after(10):
        return await anext(updates)


async def test_a_full_chat_round(server: LiveServer, remote: RemoteMachineBackend) -> None:
    """The user sends over the user API; the machine claims, streams and completes remotely."""
    setup = await _setup(server, remote)
    token = setup.token
    # The cookie jar must accept cookies from an IP address (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        csrf = await _sign_in(http, server)
        started = await http.post(
            f"{server.url}/api/workers/{setup.worker.worker_id}/sessions",
            json={"model": MODEL},
            headers=csrf,
        )
        assert started.status == 201, await started.text()
        session_id = (await started.json())["session"]["chat_session_id"]
        messages_url = f"{server.url}/api/sessions/{session_id}/messages"
        sent = await http.post(messages_url, json={"content": "Say hello"}, headers=csrf)
        assert sent.status == 201
        assert (await sent.json())["queued"] is False

        updates = remote.watch_work(token)
        work = await _next_work(updates)
        assert [m.content for w in work for m in w.pending_messages] == ["Say hello"]
        pending = work[0].pending_messages[0]
        reply = await remote.claim_message(token, pending.message_id)
        assert reply.status is MessageStatus.STREAMING
        await remote.update_session(
            token, work[0].session.chat_session_id, SessionUpdate(title="Greeting")
        )
        chunks = [
            await remote.append_chunk(token, reply.message_id, piece)
            for piece in ("Hel", "lo ", "wörld \U0001f600")
        ]
        assert [c.sequence for c in chunks] == sorted({c.sequence for c in chunks})
        done = await remote.complete_message(token, reply.message_id, "Hello wörld \U0001f600")
        assert done.status is MessageStatus.COMPLETED
        await updates.aclose()  # type: ignore[attr-defined]

        answer = await http.get(messages_url)
        assert answer.status == 200, await answer.text()
        listed = await answer.json()
        assert [(m["role"], m["content"], m["completed"]) for m in listed["messages"]] == [
            ("user", "Say hello", True),
            ("assistant", "Hello wörld \U0001f600", True),
        ]
        stream_url = f"{server.url}/api/sessions/{session_id}/stream?after=0"
        async with http.get(stream_url) as stream:
            text = ""
            with anyio.fail_after(10):
                while text.count("event: chunk") < 3:
                    text += (await stream.content.readline()).decode()
        assert f"id: {chunks[-1].sequence}\n" in text
    history = await remote.list_session_messages(token, reply.chat_session_id)
    assert [m.message_id for m in history] == [pending.message_id, reply.message_id]
    session = await server.backend.get_session(setup.user, reply.chat_session_id)
    assert session.title == "Greeting"


async def test_errors_round_trip_as_the_same_class_and_sentence(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """Chat errors reach the machine as the exception the backend raised, sentence included."""
    setup = await _setup(server, remote)
    other = await _setup(server, remote, "bob")
    token, backend = setup.token, server.backend
    session = await backend.start_session(setup.user, setup.worker.worker_id, MODEL)
    first = await backend.send_message(setup.user, session.chat_session_id, "one")
    reply = await remote.claim_message(token, first.message_id)
    big = "x" * (MAX_CHUNK_LENGTH + 1)
    cases: list[tuple[Awaitable[object], Awaitable[object], type[OrchestratorError]]] = [
        (
            remote.claim_message(token, first.message_id),
            backend.claim_message(token, first.message_id),
            Conflict,
        ),
        (
            remote.claim_message(other.token, first.message_id),
            backend.claim_message(other.token, first.message_id),
            NotFound,
        ),
        (
            remote.append_chunk(other.token, reply.message_id, "x"),
            backend.append_chunk(other.token, reply.message_id, "x"),
            NotFound,
        ),
        (
            remote.list_session_messages(other.token, session.chat_session_id),
            backend.list_session_messages(other.token, session.chat_session_id),
            NotFound,
        ),
        (
            remote.end_reply(token, reply.message_id, MessageStatus.COMPLETED, "no"),
            backend.end_reply(token, reply.message_id, MessageStatus.COMPLETED, "no"),
            InvalidInput,
        ),
        (
            remote.append_chunk(token, reply.message_id, big),
            backend.append_chunk(token, reply.message_id, big),
            PayloadTooLarge,
        ),
    ]
    for over_http, direct, expected in cases:
        remote_error, direct_error = await _error(over_http), await _error(direct)
        assert type(remote_error) is type(direct_error) is expected
        assert remote_error.message == direct_error.message


async def test_permissions_travel_both_ways(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """The machine records a request, the user's answer shows in the work feed, it is resolved."""
    setup, reply = await _claimed(server, remote, "run ls")
    token, backend = setup.token, server.backend
    asked = await remote.record_permission(
        token, reply.message_id, PermissionAsk("per_1", "bash", "ls -la")
    )
    assert asked.status is PermissionStatus.PENDING
    await backend.answer_permission(setup.user, asked.permission_id, PermissionAnswer.ONCE)
    updates = remote.watch_work(token)
    work = await _next_work(updates)
    await updates.aclose()  # type: ignore[attr-defined]
    answered = [p for w in work for p in w.answered_permissions]
    assert [(p.permission_id, p.answer) for p in answered] == [
        (asked.permission_id, PermissionAnswer.ONCE)
    ]
    resolved = await remote.resolve_permission(token, asked.permission_id)
    assert resolved.status is PermissionStatus.RESOLVED
    idle = await remote.update_session(
        token,
        reply.chat_session_id,
        SessionUpdate(status=ChatSessionStatus.IDLE, agent_session_id="ses_1"),
    )
    assert (idle.status, idle.agent_session_id) == (ChatSessionStatus.IDLE, "ses_1")
    ended = await remote.end_reply(token, reply.message_id, MessageStatus.ABORTED, "Stopped.")
    assert (ended.status, ended.error) == (MessageStatus.ABORTED, "Stopped.")


async def test_an_edit_permission_keeps_its_file_and_diff_over_http(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """The machine's edit request arrives with its file, clipped diff and full diff size."""
    setup, reply = await _claimed(server, remote, "write it")
    token, backend = setup.token, server.backend
    diff = "@@ -0,0 +1 @@\n+hello\n"
    asked = await remote.record_permission(
        token,
        reply.message_id,
        PermissionAsk("per_2", "edit", "a.txt", file="/w/a.txt", diff=diff, diff_size=99),
    )
    assert (asked.file, asked.diff, asked.diff_size) == ("/w/a.txt", diff, 99)
    assert await backend.list_permissions(setup.user, reply.chat_session_id) == [asked]


async def test_watch_work_yields_new_messages_and_survives_a_restart(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """The work feed shows a new pending message, rides out a restart and shows the next one."""
    setup = await _setup(server, remote)
    backend = server.backend
    session: ChatSession = await backend.start_session(setup.user, setup.worker.worker_id, MODEL)
    updates = remote.watch_work(setup.token)

    def pending(work: list[SessionWork]) -> list[str]:
        return [m.content for w in work for m in w.pending_messages]

    assert pending(await _next_work(updates)) == []
    await backend.send_message(setup.user, session.chat_session_id, "first")
    assert pending(await _next_work(updates)) == ["first"]
    received: list[list[SessionWork]] = []

    async def wait_for_next() -> None:
        received.append(await _next_work(updates))

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for_next)
        await server.stop()
        await backend.send_message(setup.user, session.chat_session_id, "while down")
        await anyio.sleep(0.3)  # the client meanwhile retries against the closed port
        await server.start()
    assert pending(received[0]) == ["first", "while down"]
    await backend.send_message(setup.user, session.chat_session_id, "after")
    assert pending(await _next_work(updates)) == ["first", "while down", "after"]
    await updates.aclose()  # type: ignore[attr-defined]


async def test_parts_travel_over_the_machine_api(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """A remote machine stores tool, step and text parts; the owner lists them as sent."""
    setup, reply = await _claimed(server, remote, "write a file")
    backend = server.backend
    output = "x" * (MAX_TOOL_OUTPUT_BYTES + 10)
    tool = ToolPart("write", "call_1", ToolState(ToolStatus.COMPLETED, "{}", "a.txt", output))
    stored = await remote.save_part(setup.token, reply.message_id, "prt_tool", tool)
    assert isinstance(stored.body, ToolPart)
    assert stored.body.state.output_size == MAX_TOOL_OUTPUT_BYTES + 10
    finish = StepFinishPart("stop", 0.5, Tokens(input=7, output=3))
    await remote.save_part(setup.token, reply.message_id, "prt_step", finish)
    first = await remote.append_part_text(
        setup.token, reply.message_id, TextAppend("prt_t", 0, "Done")
    )
    again = await remote.append_part_text(
        setup.token, reply.message_id, TextAppend("prt_t", 0, "Done")
    )
    assert (first.added, first.chunk is not None, again.added, again.chunk) == (4, True, 0, None)
    thought = await remote.append_part_text(
        setup.token, reply.message_id, TextAppend("prt_r", 0, "hmm", TextKind.REASONING)
    )
    assert thought.chunk is None
    with pytest.raises(TextGap, match=r"send again from character 4\.$"):
        await remote.append_part_text(setup.token, reply.message_id, TextAppend("prt_t", 9, "!"))
    parts = await backend.list_parts(setup.user, reply.chat_session_id)
    assert [p.part_id for p in parts] == ["prt_tool", "prt_step", "prt_t", "prt_r"]
    assert parts[0].body == stored.body
    assert parts[1].body == finish
    assert parts[2].body == TextPart("Done")


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"part_id": "prt_1"}, "The field 'body' must be a JSON object."),
        (
            {"part_id": "prt_1", "body": {"type": "tool"}},
            "This tool part is not in a shape this version can read.",
        ),
        ({"part_id": "prt_1", "body": {"type": "text", "text": 5}}, "This text part is not in"),
    ],
)
async def test_a_malformed_part_is_refused_with_one_sentence(
    server: LiveServer, remote: RemoteMachineBackend, body: dict[str, object], sentence: str
) -> None:
    """A save_part body that is not a part is a 400 with one sentence; nothing is stored."""
    setup, reply = await _claimed(server, remote, "hi")
    auth = {"Authorization": f"Bearer {setup.token.machine_id}:{setup.token.secret}"}
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{server.url}{MACHINE_API_PREFIX}/save_part",
            json={"message_id": reply.message_id, **body},
            headers=auth,
        )
        assert answer.status == 400
        assert sentence in (await answer.json())["error"]
        bad_offset = await http.post(
            f"{server.url}{MACHINE_API_PREFIX}/append_part_text",
            json={"message_id": reply.message_id, "part_id": "p", "offset": "0", "text": "x"},
            headers=auth,
        )
        assert (await bad_offset.json())["error"] == "The field 'offset' must be an integer."
    assert await server.backend.list_parts(setup.user, reply.chat_session_id) == []


async def test_an_unknown_text_kind_is_refused(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """An unknown text kind over HTTP is refused with the field's allowed values."""
    setup = await _setup(server, remote)
    auth = {"Authorization": f"Bearer {setup.token.machine_id}:{setup.token.secret}"}
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{server.url}{MACHINE_API_PREFIX}/append_part_text",
            json={"message_id": "msg_x", "part_id": "p", "offset": 0, "text": "x", "kind": "x"},
            headers=auth,
        )
    body = await answer.json()
    assert answer.status == 400, body
    assert body["error"] == "The field 'kind' must be one of: text, reasoning."


@attrs.define
class _RawWork:
    """The work subscription's raw frames on a WebSocket of its own (reuse asked or not)."""

    ws: aiohttp.ClientWebSocketResponse

    @classmethod
    async def open(cls, remote: RemoteMachineBackend, token: MachineToken, reuse: bool) -> Self:
        ws = await remote.open_websocket(token)
        flag = {"reuse": True} if reuse else {}
        await ws.send_json({"id": 1, "subscribe": "work", "args": {}, **flag})
        return cls(ws)

    async def next(self) -> Any:
        with anyio.fail_after(10):
            return await self.ws.receive_json()


async def test_a_work_list_sends_again_only_the_session_that_changed(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """After the first list, unchanged sessions go as the index they had (asked for) and the
    machine reuses what it read; a client that did not ask gets every list whole."""
    setup = await _setup(server, remote)
    backend = server.backend
    sessions = [
        await backend.start_session(setup.user, setup.worker.worker_id, MODEL) for _ in range(3)
    ]
    updates = remote.watch_work(setup.token)
    reusing = await _RawWork.open(remote, setup.token, reuse=True)
    whole = await _RawWork.open(remote, setup.token, reuse=False)
    first = await _next_work(updates)
    assert len((await reusing.next())["value"]) == len((await whole.next())["value"]) == 3
    await backend.send_message(setup.user, sessions[1].chat_session_id, "hello")
    second = await _next_work(updates)
    changed = await reusing.next()
    assert [i < 0 for i in changed["same"]].count(True) == 1  # one session sent again
    assert [item is None for item in changed["value"]].count(False) == 1
    plain = await whole.next()
    assert "same" not in plain
    assert len(plain["value"]) == 3
    direct = backend.watch_work(setup.token)
    assert second == await anext(direct)
    await direct.aclose()
    [new] = [w for w in second if w.pending_messages]
    assert new.session.chat_session_id == sessions[1].chat_session_id
    kept = [w for w in second if w is not new]
    assert all(any(w is old for old in first) for w in kept)  # the same objects: not read again
    await updates.aclose()  # type: ignore[attr-defined]
    await reusing.ws.close()
    await whole.ws.close()

"""The chat half of the machine API: every ChatMachineBackend call and the work subscription."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orchestrator.domain.chat import ChatMessage, PermissionAnswer
from orchestrator.domain.ids import MachineToken
from tests.unit.test_web_support import Chat, machine_call

pytestmark = pytest.mark.anyio


async def _pending(chat: Chat, text: str = "hello") -> ChatMessage:
    session = await chat.start()
    return await chat.web.backend.send_message(chat.user, session.chat_session_id, text)


async def test_a_reply_streams_over_http(chat: Chat) -> None:
    """Claim, append chunks and complete over HTTP; the user sees the completed reply."""
    web, token = chat.web, chat.token
    sent = await _pending(chat)
    status, body = await machine_call(web, token, "claim_message", message_id=sent.message_id)
    assert status == 200
    reply = body["value"]
    assert (reply["role"], reply["status"], reply["reply_to"]) == (
        "assistant",
        "streaming",
        sent.message_id,
    )
    sequences = []
    for piece in ("Hi", " there"):
        status, body = await machine_call(
            web, token, "append_chunk", message_id=reply["message_id"], text=piece
        )
        assert (status, body["value"]["chunk"]) == (200, piece)
        sequences.append(body["value"]["sequence"])
    assert sequences == sorted(set(sequences))
    status, body = await machine_call(
        web, token, "complete_message", message_id=reply["message_id"], content="Hi there"
    )
    assert (status, body["value"]["status"], body["value"]["completed"]) == (
        200,
        "completed",
        True,
    )
    status, body = await machine_call(
        web, token, "list_session_messages", session_id=sent.chat_session_id
    )
    assert [m["content"] for m in body["value"]] == ["hello", "Hi there"]


async def test_sessions_and_permissions_over_http(chat: Chat) -> None:
    """update_session, report_undo, record_permission, resolve_permission, end_reply: records."""
    web, token = chat.web, chat.token
    sent = await _pending(chat)
    _, body = await machine_call(web, token, "claim_message", message_id=sent.message_id)
    reply_id = body["value"]["message_id"]
    status, body = await machine_call(
        web,
        token,
        "update_session",
        session_id=sent.chat_session_id,
        status="idle",
        agent_session_id="ses_9",
        title=None,
    )
    assert (status, body["value"]["status"], body["value"]["agent_session_id"]) == (
        200,
        "idle",
        "ses_9",
    )
    status, body = await machine_call(
        web,
        token,
        "record_permission",
        message_id=reply_id,
        agent_request_id="per_1",
        tool="bash",
        description="rm -rf build",
    )
    assert (status, body["value"]["status"]) == (200, "pending")
    assert (body["value"]["file"], body["value"]["diff"], body["value"]["diff_size"]) == ("", "", 0)
    permission_id = body["value"]["permission_id"]
    await web.backend.answer_permission(chat.user, permission_id, PermissionAnswer.REJECT)
    status, body = await machine_call(web, token, "resolve_permission", permission_id=permission_id)
    assert (status, body["value"]["status"], body["value"]["answer"]) == (
        200,
        "resolved",
        "reject",
    )
    status, body = await machine_call(
        web, token, "report_undo", session_id=sent.chat_session_id, applied=0, error=None
    )
    assert (status, body["value"]["undo_applied"]) == (200, 0)  # nothing was asked: unchanged
    status, body = await machine_call(
        web, token, "end_reply", message_id=reply_id, status="failed", reason="The agent died."
    )
    assert (status, body["value"]["status"], body["value"]["error"]) == (
        200,
        "failed",
        "The agent died.",
    )


async def _streaming_reply(chat: Chat) -> str:
    sent = await _pending(chat)
    _, body = await machine_call(chat.web, chat.token, "claim_message", message_id=sent.message_id)
    return str(body["value"]["message_id"])


async def _record_edit(chat: Chat, **fields: object) -> tuple[int, Any]:
    """Record an edit permission with *fields* on a fresh streaming reply."""
    reply_id = await _streaming_reply(chat)
    return await machine_call(
        chat.web,
        chat.token,
        "record_permission",
        message_id=reply_id,
        agent_request_id="per_1",
        tool="edit",
        **fields,
    )


async def test_an_edit_permission_carries_its_file_and_diff_over_http(chat: Chat) -> None:
    """record_permission takes the edit's file, diff and full size; the owner reads them back."""
    diff = "@@ -1 +1 @@\n-a\n+<img src=x onerror=alert(1)>\n"
    status, body = await _record_edit(
        chat, description="notes.txt", file="/w/notes.txt", diff=diff, diff_size=90_000
    )
    assert status == 200
    assert (body["value"]["file"], body["value"]["diff"], body["value"]["diff_size"]) == (
        "/w/notes.txt",
        diff,
        90_000,
    )
    [request] = await chat.web.backend.list_permissions(chat.user, body["value"]["chat_session_id"])
    assert (request.file, request.diff, request.diff_size) == ("/w/notes.txt", diff, 90_000)


@pytest.mark.parametrize(
    ("edit", "status", "sentence"),
    [
        (
            {"file": "a.py", "diff": "+" * 60_001, "diff_size": 60_001},
            413,
            "The diff must be at most 60000 bytes; send its start and its full size.",
        ),
        (
            {"file": "a.py", "diff": "+x", "diff_size": 1},
            400,
            "The diff size must count the bytes of the whole diff.",
        ),
        (
            {"file": "a.py", "diff": "+x", "diff_size": "2"},
            400,
            "The field 'diff_size' must be an integer.",
        ),
        ({"file": 3, "diff": "+x", "diff_size": 2}, 400, "The field 'file' must be a string."),
    ],
)
async def test_a_bad_edit_permission_gets_one_sentence_and_stores_nothing(
    chat: Chat, edit: dict[str, object], status: int, sentence: str
) -> None:
    """An oversized diff, a size below the diff or a wrong type is refused; nothing is stored."""
    got_status, body = await _record_edit(chat, description="a.py", **edit)
    assert (got_status, body["error"]) == (status, sentence)
    [session] = await chat.web.backend.list_sessions(chat.user, chat.worker.worker_id)
    assert await chat.web.backend.list_permissions(chat.user, session.chat_session_id) == []


@pytest.mark.parametrize(
    ("method", "args", "status", "sentence"),
    [
        ("claim_message", {}, 400, "The field 'message_id' is required."),
        ("claim_message", {"message_id": "no such/id"}, 404, "No such message."),
        (
            "append_chunk",
            {"message_id": "msg_1", "text": 5},
            400,
            "The field 'text' must be a string.",
        ),
        (
            "end_reply",
            {"message_id": "msg_1", "status": "done", "reason": "x"},
            400,
            "The field 'status' must be one of: pending, processing, streaming, completed,"
            " failed, interrupted, aborted.",
        ),
        (
            "update_session",
            {"session_id": "chs_1", "status": "paused"},
            400,
            "The field 'status' must be one of: active, idle, terminated.",
        ),
        (
            "report_undo",
            {"session_id": "chs_1", "applied": "1", "error": None},
            400,
            "The field 'applied' must be an integer.",
        ),
        (
            "resolve_permission",
            {"permission_id": 7},
            400,
            "The field 'permission_id' must be a string.",
        ),
    ],
)
async def test_bad_chat_bodies_get_one_sentence(
    chat: Chat, method: str, args: dict[str, object], status: int, sentence: str
) -> None:
    """Malformed arguments of chat methods are refused with a status and one sentence."""
    got_status, body = await machine_call(chat.web, chat.token, method, **args)
    assert (got_status, body["error"]) == (status, sentence)


async def test_chat_methods_need_the_machine_secret(chat: Chat) -> None:
    """A chat call with a wrong secret is 401 and claims nothing."""
    sent = await _pending(chat)
    wrong = MachineToken(chat.token.machine_id, "sec_wrong")
    status, body = await machine_call(chat.web, wrong, "claim_message", message_id=sent.message_id)
    assert (status, body["type"]) == (401, "AuthenticationFailed")
    messages = await chat.web.backend.list_messages(chat.user, sent.chat_session_id)
    assert [m.status.value for m in messages] == ["pending"]


async def test_a_whole_reply_may_exceed_the_default_body_limit(chat: Chat) -> None:
    """complete_message takes a reply far larger than max_body_bytes (4096 in these tests)."""
    sent = await _pending(chat)
    _, body = await machine_call(chat.web, chat.token, "claim_message", message_id=sent.message_id)
    content = "ä" * 200_000
    status, body = await machine_call(
        chat.web,
        chat.token,
        "complete_message",
        message_id=body["value"]["message_id"],
        content=content,
    )
    assert status == 200
    assert body["value"]["content"] == content


async def test_the_work_subscription_pushes_pending_messages(chat: Chat) -> None:
    """A machine subscribed to work sees its open sessions and each new pending message."""
    session = await chat.start()
    headers = {"Authorization": f"Bearer {chat.token}"}
    async with chat.web.client.ws_connect("/api/machine/ws", headers=headers) as ws:
        await ws.send_json({"id": 3, "subscribe": "work"})
        with anyio.fail_after(5):
            frame = await ws.receive_json()
        assert frame["id"] == 3
        assert [w["session"]["chat_session_id"] for w in frame["value"]] == [
            session.chat_session_id
        ]
        assert frame["value"][0]["pending_messages"] == []
        await chat.web.backend.send_message(chat.user, session.chat_session_id, "do it")
        with anyio.fail_after(5):
            frame = await ws.receive_json()
        assert [m["content"] for m in frame["value"][0]["pending_messages"]] == ["do it"]

"""The browser's chat API: sessions, messages, abort, permissions, ownership and limits."""

from __future__ import annotations

import json

import pytest

from orchestrator.domain.chat import MAX_MESSAGE_LENGTH
from orchestrator.domain.diffs import TURN_DIFF_PART, TurnDiffPart
from orchestrator.domain.parts import StepFinishPart, Tokens
from orchestrator.domain.replies import PermissionAsk
from orchestrator.entrypoints.web.chat_api import QUEUED_NOTICE
from tests.unit.test_web_support import (
    MODEL,
    Chat,
    Client,
    Harness,
)

pytestmark = pytest.mark.anyio

#: Endpoints about one session, with a body valid for each.
SESSION_ENDPOINTS = [
    ("GET", "", None),
    ("POST", "/end", None),
    ("POST", "/restore", None),
    ("GET", "/messages", None),
    ("POST", "/messages", {"content": "hi"}),
    ("POST", "/abort", None),
    ("GET", "/permissions", None),
    ("GET", "/stream", None),
]


async def _stranger(web: Harness) -> tuple[Client, str]:
    """A second signed-in browser belonging to another user."""
    client = await web.new_client()
    return client, await web.sign_in(client, "mallory")


async def test_session_lifecycle(chat: Chat) -> None:
    """Start a session, list and get it, end it (terminated, listed last) and restore it."""
    worker_id = chat.worker.worker_id
    status, body = await chat.post(f"/api/workers/{worker_id}/sessions", {"model": f" {MODEL} "})
    assert status == 201
    session = body["session"]
    assert (session["model"], session["status"], session["worker_id"]) == (
        MODEL,
        "active",
        worker_id,
    )
    session_id = session["chat_session_id"]
    listed = await (await chat.web.client.get(f"/api/workers/{worker_id}/sessions")).json()
    assert [s["chat_session_id"] for s in listed["sessions"]] == [session_id]
    got = await (await chat.web.client.get(f"/api/sessions/{session_id}")).json()
    assert got == {"session": session}

    status, body = await chat.post(f"/api/sessions/{session_id}/end")
    assert (status, body["session"]["status"]) == (200, "terminated")
    newer = await chat.start()
    listed = await (await chat.web.client.get(f"/api/workers/{worker_id}/sessions")).json()
    assert [s["chat_session_id"] for s in listed["sessions"]] == [
        newer.chat_session_id,
        session_id,
    ]
    status, body = await chat.post(f"/api/sessions/{session_id}/restore")
    assert (status, body["session"]["status"]) == (200, "idle")


@pytest.mark.parametrize(
    ("body", "status", "sentence"),
    [
        ({}, 400, "The field 'model' is required."),
        ({"model": 3}, 400, "The field 'model' must be a string."),
        ({"model": "  "}, 400, "Choose a model (at most 200 characters)."),
        ({"model": "x" * 201}, 400, "Choose a model (at most 200 characters)."),
        (
            {"model": "other/model"},
            400,
            "The worker does not offer model other/model. Pick one of: fake/model-a, fake/model-b.",
        ),
        ([MODEL], 400, "The request body must be a JSON object."),
    ],
)
async def test_start_session_validates_the_body(
    chat: Chat, body: object, status: int, sentence: str
) -> None:
    """A bad body to start a session gets one sentence saying what is wrong; nothing starts."""
    got = await chat.post(f"/api/workers/{chat.worker.worker_id}/sessions", body)
    assert got[0] == status
    assert got[1]["error"] == sentence
    assert await chat.web.backend.list_sessions(chat.user, chat.worker.worker_id) == []


async def test_start_session_needs_a_json_body(chat: Chat) -> None:
    """A form-encoded body is refused with a sentence asking for JSON."""
    response = await chat.web.client.post(
        f"/api/workers/{chat.worker.worker_id}/sessions",
        data={"model": MODEL},
        headers=chat.headers,
    )
    assert response.status == 400
    assert "application/json" in (await response.json())["error"]


async def test_send_message_to_an_online_worker(chat: Chat) -> None:
    """A message is stored pending and answered 201, not queued; the list shows it."""
    session = await chat.start()
    path = f"/api/sessions/{session.chat_session_id}/messages"
    status, body = await chat.post(path, {"content": "Hello **there**"})
    assert status == 201
    assert body["queued"] is False
    assert "notice" not in body
    message = body["message"]
    assert (message["role"], message["content"], message["status"], message["completed"]) == (
        "user",
        "Hello **there**",
        "pending",
        False,
    )
    listed = await (await chat.web.client.get(path)).json()
    assert listed == {"messages": [message], "cursor": None, "has_more": False}


async def test_send_message_to_an_offline_worker_is_queued(chat: Chat) -> None:
    """With the worker offline the message is stored and flagged queued, with a sentence."""
    session = await chat.start()
    await chat.web.backend.worker_offline(chat.token, chat.worker.worker_id)
    status, body = await chat.post(
        f"/api/sessions/{session.chat_session_id}/messages", {"content": "later"}
    )
    assert status == 201
    assert body["queued"] is True
    assert body["notice"] == QUEUED_NOTICE
    messages = await chat.web.backend.list_messages(chat.user, session.chat_session_id)
    assert [m.content for m in messages] == ["later"]


async def test_send_message_to_a_worker_its_machine_refuses_is_refused_with_why(
    chat: Chat,
) -> None:
    """A worker its machine cannot run refuses messages with 409 and the machine's sentence."""
    session = await chat.start()
    problem = "The folder 'repo' leads outside the machine's root /srv; pick one inside it."
    await chat.web.backend.worker_offline(chat.token, chat.worker.worker_id, problem)
    status, body = await chat.post(
        f"/api/sessions/{session.chat_session_id}/messages", {"content": "hello?"}
    )
    assert (status, body["error"]) == (409, problem)
    assert await chat.web.backend.list_messages(chat.user, session.chat_session_id) == []
    # Back online (the folder was fixed): messages are taken again.
    await chat.web.backend.worker_heartbeat(chat.token, chat.worker.worker_id)
    status, _ = await chat.post(
        f"/api/sessions/{session.chat_session_id}/messages", {"content": "hello?"}
    )
    assert status == 201


async def test_send_message_with_the_machine_offline_is_queued(chat: Chat) -> None:
    """A machine that went offline takes its workers with it: the message is queued."""
    session = await chat.start()
    await chat.web.backend.go_offline(chat.token)
    _, body = await chat.post(f"/api/sessions/{session.chat_session_id}/messages", {"content": "x"})
    assert body["queued"] is True


async def test_send_message_to_a_terminated_session_is_a_conflict(chat: Chat) -> None:
    """An ended session refuses messages with 409 and a sentence; nothing is stored."""
    session = await chat.start()
    await chat.web.backend.end_session(chat.user, session.chat_session_id)
    status, body = await chat.post(
        f"/api/sessions/{session.chat_session_id}/messages", {"content": "hello?"}
    )
    assert status == 409
    assert body == {
        "error": "This session has ended. Restore it to continue.",
        "type": "Conflict",
    }
    assert await chat.web.backend.list_messages(chat.user, session.chat_session_id) == []


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({}, "The field 'content' is required."),
        ({"content": ["hi"]}, "The field 'content' must be a string."),
        ({"content": " \n "}, "A message must not be empty."),
    ],
)
async def test_send_message_validates_the_body(chat: Chat, body: object, sentence: str) -> None:
    """A bad message body gets 400 and one sentence; nothing is stored."""
    session = await chat.start()
    status, answer = await chat.post(f"/api/sessions/{session.chat_session_id}/messages", body)
    assert (status, answer["error"]) == (400, sentence)
    assert await chat.web.backend.list_messages(chat.user, session.chat_session_id) == []


async def test_the_longest_message_fits_however_it_is_encoded(chat: Chat) -> None:
    """A message of MAX_MESSAGE_LENGTH astral characters, ASCII-escaped (~1.2 MB), is accepted."""
    session = await chat.start()
    content = "\U0001f600" * MAX_MESSAGE_LENGTH
    raw = json.dumps({"content": content})  # escapes each as a surrogate pair: 12 bytes
    assert len(raw) > 1024 * 1024
    response = await chat.web.client.post(
        f"/api/sessions/{session.chat_session_id}/messages",
        data=raw,
        headers={**chat.headers, "Content-Type": "application/json"},
    )
    assert response.status == 201, await response.text()
    messages = await chat.web.backend.list_messages(chat.user, session.chat_session_id)
    assert [m.content for m in messages] == [content]


async def test_an_oversized_message_is_413(chat: Chat) -> None:
    """One character over MAX_MESSAGE_LENGTH gets 413 with the limit in the sentence."""
    session = await chat.start()
    status, body = await chat.post(
        f"/api/sessions/{session.chat_session_id}/messages",
        {"content": "a" * (MAX_MESSAGE_LENGTH + 1)},
    )
    assert status == 413
    assert body == {
        "error": f"A message must be at most {MAX_MESSAGE_LENGTH} characters.",
        "type": "PayloadTooLarge",
    }


async def test_an_oversized_body_is_413_before_it_is_read(chat: Chat) -> None:
    """A body over the message route's byte limit gets 413 naming the limit; nothing is stored."""
    session = await chat.start()
    status, body = await chat.post(
        f"/api/sessions/{session.chat_session_id}/messages", {"content": "\x00" * 300_000}
    )
    assert status == 413
    assert body["error"].startswith("The request body is larger than the limit of")
    assert await chat.web.backend.list_messages(chat.user, session.chat_session_id) == []


async def test_other_routes_keep_the_small_body_limit(chat: Chat) -> None:
    """Only the message route takes large bodies; starting a session keeps max_body_bytes."""
    status, body = await chat.post(
        f"/api/workers/{chat.worker.worker_id}/sessions", {"model": MODEL, "pad": "x" * 5000}
    )
    assert status == 413
    assert body["error"] == "The request body is larger than the limit of 4096 bytes."


@pytest.mark.parametrize(("method", "suffix", "body"), SESSION_ENDPOINTS)
async def test_another_users_session_is_not_found(
    chat: Chat, method: str, suffix: str, body: object
) -> None:
    """Someone else's session is 404 on every endpoint, and nothing about it changes."""
    session = await chat.start()
    client, csrf = await _stranger(chat.web)
    response = await client.request(
        method,
        f"/api/sessions/{session.chat_session_id}{suffix}",
        json=body,
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 404
    assert (await response.json())["type"] == "NotFound"
    assert await chat.web.backend.get_session(chat.user, session.chat_session_id) == session
    assert await chat.web.backend.list_messages(chat.user, session.chat_session_id) == []


async def test_another_users_worker_is_not_found(chat: Chat) -> None:
    """Listing or starting sessions on someone else's worker is 404."""
    client, csrf = await _stranger(chat.web)
    path = f"/api/workers/{chat.worker.worker_id}/sessions"
    assert (await client.get(path)).status == 404
    started = await client.post(path, json={"model": MODEL}, headers={"X-CSRF-Token": csrf})
    assert started.status == 404
    assert await chat.web.backend.list_sessions(chat.user, chat.worker.worker_id) == []


@pytest.mark.parametrize("path", ["/api/sessions/not%20an%20id", "/api/sessions/chs_missing"])
async def test_unknown_session_ids_are_not_found(chat: Chat, path: str) -> None:
    """A session ID that is malformed or does not exist is 404 with a sentence."""
    response = await chat.web.client.get(path)
    assert response.status == 404
    assert (await response.json())["type"] == "NotFound"


async def test_abort_asks_the_machine_to_stop_the_reply(chat: Chat) -> None:
    """Abort with nothing streaming answers null; with a reply streaming it marks it."""
    session = await chat.start()
    path = f"/api/sessions/{session.chat_session_id}/abort"
    assert await chat.post(path) == (200, {"message": None})
    sent = await chat.web.backend.send_message(chat.user, session.chat_session_id, "go")
    reply = await chat.web.backend.claim_message(chat.token, sent.message_id)
    status, body = await chat.post(path)
    assert status == 200
    assert body["message"]["message_id"] == reply.message_id
    assert body["message"]["abort_requested"] is True


async def test_permission_requests_are_listed_and_answered_once(chat: Chat) -> None:
    """A pending permission is listed, answered once; a second answer is a 409 conflict."""
    backend = chat.web.backend
    session, reply = await chat.claimed("run ls")
    asked = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_1", "bash", "ls")
    )
    listed = await (
        await chat.web.client.get(f"/api/sessions/{session.chat_session_id}/permissions")
    ).json()
    assert [(p["permission_id"], p["status"]) for p in listed["permissions"]] == [
        (asked.permission_id, "pending")
    ]
    path = f"/api/permissions/{asked.permission_id}/answer"
    status, body = await chat.post(path, {"answer": "always"})
    assert status == 200
    assert (body["permission"]["status"], body["permission"]["answer"]) == (
        "answered",
        "always",
    )
    again = await chat.post(path, {"answer": "reject"})
    assert again[0] == 409
    assert again[1]["type"] == "Conflict"


@pytest.mark.parametrize("answer", ["yes", "", 1, None])
async def test_a_permission_answer_must_be_known(chat: Chat, answer: object) -> None:
    """Only once, always or reject are answers; anything else is 400 and changes nothing."""
    backend = chat.web.backend
    session, reply = await chat.claimed("run ls")
    asked = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_1", "bash", "ls")
    )
    status, body = await chat.post(
        f"/api/permissions/{asked.permission_id}/answer", {"answer": answer}
    )
    assert status == 400
    assert body["type"] == "InvalidInput"
    waiting = await backend.list_permissions(chat.user, session.chat_session_id)
    assert [p.permission_id for p in waiting] == [asked.permission_id]


async def test_answered_permissions_are_listed_with_all(chat: Chat) -> None:
    """``?all=1`` lists an answered request with its answer; without it only waiting ones."""
    backend = chat.web.backend
    session, reply = await chat.claimed("run ls")
    asked = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_1", "bash", "ls")
    )
    await chat.post(f"/api/permissions/{asked.permission_id}/answer", {"answer": "reject"})
    path = f"/api/sessions/{session.chat_session_id}/permissions"
    assert (await (await chat.web.client.get(path)).json())["permissions"] == []
    every = (await (await chat.web.client.get(path, params={"all": "1"})).json())["permissions"]
    assert [(p["permission_id"], p["answer"]) for p in every] == [(asked.permission_id, "reject")]


async def test_another_users_permission_is_not_found(chat: Chat) -> None:
    """Answering someone else's permission request is 404; it stays pending."""
    backend = chat.web.backend
    session, reply = await chat.claimed("run ls")
    asked = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_1", "bash", "ls")
    )
    client, csrf = await _stranger(chat.web)
    response = await client.post(
        f"/api/permissions/{asked.permission_id}/answer",
        json={"answer": "once"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 404
    assert len(await backend.list_permissions(chat.user, session.chat_session_id)) == 1


async def test_a_session_title_is_set_by_its_owner_and_bounded(chat: Chat) -> None:
    """POST …/title renames; 201 or 10,000 characters get 413 and one sentence; nothing changes."""
    session = await chat.start()
    path = f"/api/sessions/{session.chat_session_id}/title"
    status, body = await chat.post(path, {"title": "Release notes"})
    assert (status, body["session"]["title"]) == (200, "Release notes")
    status, body = await chat.post(path, {"title": "x" * 201})
    assert (status, body["error"]) == (413, "A title must be at most 200 characters.")
    status, body = await chat.post(path, {"title": "x" * 10_000})
    assert (status, body["error"]) == (
        413,
        "The request body is larger than the limit of 4096 bytes.",
    )
    status, body = await chat.post(path, {"title": 5})
    assert status == 400
    stored = await chat.web.backend.get_session(chat.user, session.chat_session_id)
    assert stored.title == "Release notes"


async def test_a_workers_usage_sums_its_replies_steps(chat: Chat) -> None:
    """GET …/usage adds the step finishes of every session of the worker; another user gets 404."""
    backend = chat.web.backend
    path = f"/api/workers/{chat.worker.worker_id}/usage"
    empty = (await (await chat.web.client.get(path)).json())["usage"]
    assert (empty["steps"], empty["cost"]) == (0, 0.0)
    for cost in (0.25, 0.5):
        _session, reply = await chat.claimed("go")
        step = StepFinishPart("stop", cost, Tokens(input=100, output=10, reasoning=1, cache_read=5))
        await backend.save_part(chat.token, reply.message_id, "prt_f", step)
        await backend.complete_message(chat.token, reply.message_id, "done")
    usage = (await (await chat.web.client.get(path)).json())["usage"]
    assert usage == {
        "input_tokens": 200,
        "output_tokens": 20,
        "reasoning_tokens": 2,
        "cache_read_tokens": 10,
        "cost": 0.75,
        "steps": 2,
    }
    client, _ = await _stranger(chat.web)
    assert (await client.get(path)).status == 404


async def test_restoring_lets_messages_flow_again(chat: Chat) -> None:
    """After end then restore, the session takes messages again."""
    session = await chat.start()
    session_id = session.chat_session_id
    await chat.post(f"/api/sessions/{session_id}/end")
    assert (await chat.post(f"/api/sessions/{session_id}/messages", {"content": "a"}))[0] == 409
    await chat.post(f"/api/sessions/{session_id}/restore")
    assert (await chat.post(f"/api/sessions/{session_id}/messages", {"content": "a"}))[0] == 201


async def test_undo_and_redo_from_the_browser(chat: Chat) -> None:
    """POST …/undo and …/redo ask the machine; bad requests get one sentence and change nothing."""
    backend = chat.web.backend
    session = await chat.start()
    sid = session.chat_session_id
    sent = await backend.send_message(chat.user, sid, "write a.txt")
    reply = await backend.claim_message(chat.token, sent.message_id)
    await backend.save_part(chat.token, reply.message_id, TURN_DIFF_PART, TurnDiffPart("msg_a"))
    await backend.complete_message(chat.token, reply.message_id, "done")
    status, body = await chat.post(f"/api/sessions/{sid}/undo", {"message_id": "msg_nope"})
    assert (status, body["error"]) == (404, "No such reply in this session.")
    status, body = await chat.post(f"/api/sessions/{sid}/undo", {"message_id": "../x"})
    assert (status, body["error"]) == (404, "No such message.")
    status, body = await chat.post(f"/api/sessions/{sid}/redo")
    assert (status, body["error"]) == (409, "Nothing is undone in this session.")
    client, csrf = await _stranger(chat.web)
    response = await client.post(
        f"/api/sessions/{sid}/undo",
        json={"message_id": reply.message_id},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 404
    assert (await backend.get_session(chat.user, sid)).undo_requests == 0

    status, body = await chat.post(f"/api/sessions/{sid}/undo", {"message_id": reply.message_id})
    assert (status, body["session"]["undone_from"]) == (200, reply.message_id)
    assert body["session"]["undo_requests"] == 1
    status, body = await chat.post(f"/api/sessions/{sid}/redo")
    assert (status, body["session"]["undone_from"]) == (200, None)
    await backend.end_session(chat.user, sid)
    status, body = await chat.post(f"/api/sessions/{sid}/undo", {"message_id": reply.message_id})
    assert (status, body["error"]) == (409, "This session has ended. Restore it to continue.")

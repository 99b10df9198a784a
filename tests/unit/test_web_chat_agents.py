"""The browser's chat API for agents (modes) and for editing or cancelling queued messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.chat import MAX_MESSAGE_LENGTH
from orchestrator.domain.ids import ChatSessionId
from tests.unit.test_web_support import MODEL, Chat, online_worker, running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def chat(tmp_path: Path) -> AsyncIterator[Chat]:
    async with running_app(tmp_path) as harness:
        chat = await online_worker(harness)
        await harness.backend.update_worker_agents(
            chat.token, chat.worker.worker_id, AgentCatalog(("build", "plan"), ("review",))
        )
        yield chat


async def test_a_session_and_a_message_take_an_agent(chat: Chat) -> None:
    """POST sessions and messages with an agent store it; an unknown one is 400, nothing stored."""
    worker_path = f"/api/workers/{chat.worker.worker_id}/sessions"
    status, body = await chat.post(worker_path, {"model": MODEL, "agent": "plan"})
    assert (status, body["session"]["agent"]) == (201, "plan")
    session_id = body["session"]["chat_session_id"]
    status, body = await chat.post(f"/api/sessions/{session_id}/messages", {"content": "hi"})
    assert (status, body["message"]["agent"]) == (201, None)
    messages = f"/api/sessions/{session_id}/messages"
    status, body = await chat.post(messages, {"content": "go", "agent": "build"})
    assert (status, body["message"]["agent"]) == (201, "build")
    status, body = await chat.post(messages, {"content": "x", "agent": "wizard"})
    assert (status, body["error"]) == (
        400,
        "The worker does not offer agent wizard. Pick one of: build, plan.",
    )
    status, body = await chat.post(worker_path, {"model": MODEL, "agent": "wizard"})
    assert status == 400
    stored = await chat.web.backend.list_messages(chat.user, ChatSessionId(session_id))
    assert [m.content for m in stored] == ["hi", "go"]
    assert len(await chat.web.backend.list_sessions(chat.user, chat.worker.worker_id)) == 1


async def test_a_queued_message_is_edited_and_another_cancelled(chat: Chat) -> None:
    """POST …/edit changes a queued message, …/cancel drops one; a claimed one is 409."""
    session = await chat.start()
    backend = chat.web.backend
    first = await backend.send_message(chat.user, session.chat_session_id, "first")
    second = await backend.send_message(chat.user, session.chat_session_id, "second")
    status, body = await chat.post(f"/api/messages/{first.message_id}/edit", {"content": "1st"})
    assert (status, body["message"]["content"]) == (200, "1st")
    status, body = await chat.post(f"/api/messages/{second.message_id}/cancel")
    assert (status, body) == (200, {"cancelled": True})
    big = {"content": "x" * (MAX_MESSAGE_LENGTH + 1)}
    status, body = await chat.post(f"/api/messages/{first.message_id}/edit", big)
    assert (status, body["error"]) == (
        413,
        f"A message must be at most {MAX_MESSAGE_LENGTH} characters.",
    )
    await backend.claim_message(chat.token, first.message_id)
    status, body = await chat.post(f"/api/messages/{first.message_id}/edit", {"content": "late"})
    assert (status, body["error"]) == (
        409,
        "This message is no longer queued: the agent has already received it.",
    )
    status, body = await chat.post(f"/api/messages/{second.message_id}/cancel")
    assert (status, body["error"]) == (404, "No such message.")
    status, body = await chat.post("/api/messages/..%2Fx/cancel")
    assert status in (400, 404)
    stored = await backend.list_messages(chat.user, session.chat_session_id)
    assert [m.content for m in stored] == ["1st", ""]

"""The browser's paged chat history: pages of messages, the stream's newest page, rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.domain.chat import ChatMessage, ChatSession
from orchestrator.domain.paging import BAD_CURSOR, MESSAGE_PAGE, OTHER_LIST, bad_limit
from tests.unit.test_web_support import Chat, Harness, next_sse, online_worker, running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(tmp_path, keepalive=0.05) as harness:
        yield harness


@pytest.fixture
async def chat(web: Harness) -> Chat:
    return await online_worker(web)


async def _history(chat: Chat, session: ChatSession, turns: int) -> list[ChatMessage]:
    """``turns`` questions, each answered in full; every message as stored, oldest first."""
    backend = chat.web.backend
    stored: list[ChatMessage] = []
    for n in range(turns):
        asked = await backend.send_message(chat.user, session.chat_session_id, f"question {n}")
        reply = await backend.claim_message(chat.token, asked.message_id)
        done = await backend.complete_message(chat.token, reply.message_id, f"**answer {n}**")
        stored += [asked, done]
    return stored


def _ids(messages: list[dict[str, object]]) -> list[object]:
    return [m["message_id"] for m in messages]


async def test_history_pages_newest_first_each_in_reading_order(chat: Chat) -> None:
    """The newest page comes first, oldest first inside; its cursor reads the earlier ones."""
    session = await chat.start()
    stored = await _history(chat, session, 3)
    path = f"/api/sessions/{session.chat_session_id}/messages"
    first = await (await chat.web.client.get(path, params={"limit": "4"})).json()
    assert _ids(first["messages"]) == [m.message_id for m in stored[2:]]
    assert first["has_more"] is True
    params = {"limit": "4", "cursor": first["cursor"]}
    second = await (await chat.web.client.get(path, params=params)).json()
    assert _ids(second["messages"]) == [m.message_id for m in stored[:2]]
    assert (second["cursor"], second["has_more"]) == (None, False)


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        ({"limit": "many"}, bad_limit()),
        ({"limit": "0"}, bad_limit()),
        ({"limit": "99999"}, bad_limit()),
        ({"cursor": "%%%"}, BAD_CURSOR),
    ],
)
async def test_a_bad_page_request_is_400_with_one_sentence(
    chat: Chat, params: dict[str, str], sentence: str
) -> None:
    """A page size or cursor that cannot be read is refused with its sentence."""
    session = await chat.start()
    path = f"/api/sessions/{session.chat_session_id}/messages"
    response = await chat.web.client.get(path, params=params)
    assert response.status == 400
    assert (await response.json())["error"] == sentence


async def test_another_sessions_cursor_is_400_and_another_users_session_404(chat: Chat) -> None:
    """A cursor pages only its own session; someone else's session is not found."""
    session, other = await chat.start(), await chat.start()
    await _history(chat, session, 2)
    path = f"/api/sessions/{session.chat_session_id}/messages"
    cursor = (await (await chat.web.client.get(path, params={"limit": "1"})).json())["cursor"]
    elsewhere = f"/api/sessions/{other.chat_session_id}/messages"
    response = await chat.web.client.get(elsewhere, params={"cursor": cursor})
    assert (response.status, (await response.json())["error"]) == (400, OTHER_LIST)
    stranger = await chat.web.new_client()
    await chat.web.sign_in(stranger, "mallory")
    assert (await stranger.get(path, params={"cursor": cursor})).status == 404


async def test_the_stream_sends_the_newest_page_and_where_earlier_ones_start(chat: Chat) -> None:
    """A long session's stream shows only its newest page, with the cursor of the rest."""
    session = await chat.start()
    stored = await _history(chat, session, MESSAGE_PAGE)  # two pages of messages
    async with chat.web.client.get(f"/api/sessions/{session.chat_session_id}/stream") as stream:
        first = await next_sse(stream)
    assert first.event == "messages"
    assert _ids(first.data["messages"]) == [m.message_id for m in stored[-MESSAGE_PAGE:]]
    path = f"/api/sessions/{session.chat_session_id}/messages"
    params = {"cursor": first.data["earlier"]}
    earlier = await (await chat.web.client.get(path, params=params)).json()
    assert _ids(earlier["messages"]) == [m.message_id for m in stored[:-MESSAGE_PAGE]]
    assert earlier["has_more"] is False


async def test_a_short_session_says_there_is_nothing_earlier(chat: Chat) -> None:
    """A session whose messages fit one page has no earlier cursor."""
    session = await chat.start()
    await _history(chat, session, 2)
    async with chat.web.client.get(f"/api/sessions/{session.chat_session_id}/stream") as stream:
        first = await next_sse(stream)
    assert len(first.data["messages"]) == 4
    assert first.data["earlier"] is None


async def test_rendered_replies_come_from_the_page_the_cursor_names(chat: Chat) -> None:
    """Replies of an earlier page render when asked with that page's cursor."""
    session = await chat.start()
    stored = await _history(chat, session, MESSAGE_PAGE)
    path = f"/api/sessions/{session.chat_session_id}/messages"
    cursor = (await (await chat.web.client.get(path)).json())["cursor"]
    oldest_reply = stored[1]
    rendered = await chat.web.client.get(
        f"/api/sessions/{session.chat_session_id}/rendered",
        params=[("message_id", oldest_reply.message_id), ("cursor", cursor)],
    )
    [found] = (await rendered.json())["messages"]
    assert found["message_id"] == oldest_reply.message_id
    assert "<strong>answer 0</strong>" in found["html"]
    everything = await chat.web.client.get(f"/api/sessions/{session.chat_session_id}/rendered")
    assert len((await everything.json())["messages"]) == MESSAGE_PAGE  # one page of 200
    too_many = [("message_id", f"msg_{n}") for n in range(201)]
    refused = await chat.web.client.get(
        f"/api/sessions/{session.chat_session_id}/rendered", params=too_many
    )
    assert refused.status == 400

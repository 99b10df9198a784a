"""The browser API in pages: chat history, the stream's newest page, rendering, other lists."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domain.chat import ChatMessage, ChatSession
from orchestrator.domain.jobs import JobDraft
from orchestrator.domain.paging import BAD_CURSOR, MACHINE_PAGE, MESSAGE_PAGE, OTHER_LIST, bad_limit
from tests.unit.test_web_support import (
    MODEL,
    Chat,
    next_sse,
)

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"keepalive": 0.05}


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


async def _all_pages(chat: Chat, path: str, key: str, limit: int) -> list[object]:
    """Every page of a list through the API, reading on with each cursor."""
    read: list[object] = []
    params = {"limit": str(limit)}
    while True:
        response = await chat.web.client.get(path, params=params)
        assert response.status == 200
        page = await response.json()
        assert 0 < len(page[key]) <= limit
        read += page[key]
        assert page["has_more"] == (page["cursor"] is not None)
        if page["cursor"] is None:
            return read
        params = {"limit": str(limit), "cursor": page["cursor"]}


async def test_machines_sessions_and_jobs_page_like_their_whole_lists(chat: Chat) -> None:
    """With a limit or cursor each list comes in pages that add up to the whole list."""
    backend = chat.web.backend
    for n in range(4):
        await backend.create_machine(chat.user, f"extra {n}")
        await chat.start()
        draft = JobDraft(chat.worker.worker_id, f"job {n}", MODEL, "Go.", "0 * * * *", "UTC")
        await backend.create_job(chat.user, draft, None)
    for path, key in (
        ("/api/machines", "machines"),
        (f"/api/workers/{chat.worker.worker_id}/sessions", "sessions"),
        ("/api/jobs", "jobs"),
    ):
        whole = (await (await chat.web.client.get(path)).json())[key]
        assert len(whole) >= 4
        assert await _all_pages(chat, path, key, 2) == whole


async def test_a_machine_page_holds_at_most_twenty(chat: Chat) -> None:
    """Machines come at most 20 a page: each brings its workers' counts."""
    response = await chat.web.client.get("/api/machines", params={"limit": "21"})
    assert (response.status, (await response.json())["error"]) == (400, bad_limit(MACHINE_PAGE))

"""The live chat stream (SSE): order, event IDs, resuming without gap or duplicate."""

from __future__ import annotations

from typing import Any

import aiohttp
import anyio
import pytest

from orchestrator.domain.chat import ChatChunk, ChatMessage, ChatSession
from orchestrator.domain.parts import TextAppend, ToolPart, ToolState, ToolStatus
from orchestrator.domain.questions import Question, QuestionOption
from orchestrator.domain.replies import PermissionAsk, QuestionAsk
from orchestrator.entrypoints.web.chat_stream import BAD_RESUME_POINT
from tests.unit.test_web_support import (
    MODEL,
    Chat,
    SseEvent,
    next_sse,
)

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"keepalive": 0.05}


async def _streaming_reply(chat: Chat, session: ChatSession, text: str = "hi") -> ChatMessage:
    """Send ``text`` as the user and have the machine claim it; returns the streaming reply."""
    sent = await chat.web.backend.send_message(chat.user, session.chat_session_id, text)
    return await chat.web.backend.claim_message(chat.token, sent.message_id)


async def _chunks(stream: aiohttp.ClientResponse, count: int) -> list[SseEvent]:
    """The next ``count`` chunk events, skipping message lists and request lists."""
    found: list[SseEvent] = []
    while len(found) < count:
        event = await next_sse(stream)
        assert event.event in ("chunk", "messages", "requests"), event
        if event.event == "chunk":
            found.append(event)
    return found


async def _sequenced(stream: aiohttp.ClientResponse) -> SseEvent:
    """The next chunk or part, skipping message and request lists."""
    while (event := await next_sse(stream)).event in ("messages", "requests"):
        pass
    return event


def _path(session: ChatSession) -> str:
    return f"/api/sessions/{session.chat_session_id}/stream"


async def test_stream_sends_messages_then_chunks_in_order_with_ids(chat: Chat) -> None:
    """The stream starts with the message list; each chunk is one event whose ID is its sequence."""
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    async with chat.web.client.get(_path(session)) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = await next_sse(stream)
        assert first.event == "messages"
        assert [m["status"] for m in first.data["messages"]] == ["processing", "streaming"]
        appended = [
            await chat.web.backend.append_chunk(chat.token, reply.message_id, piece)
            for piece in ("Hel", "lo", " world")
        ]
        events = await _chunks(stream, 3)
        assert [e.id for e in events] == [c.sequence for c in appended]
        assert [e.data["chunk"] for e in events] == ["Hel", "lo", " world"]
        assert events[0].data["message_id"] == reply.message_id
        await chat.web.backend.complete_message(chat.token, reply.message_id, "Hello world")
        while (event := await next_sse(stream)).event != "messages" or not all(
            m["completed"] for m in event.data["messages"]
        ):
            assert event.event != "chunk"
        assert event.data["messages"][-1]["content"] == "Hello world"


async def test_reconnecting_with_last_event_id_has_no_gap_and_no_duplicate(chat: Chat) -> None:
    """Dropping and resuming twice while the machine keeps appending yields every chunk once."""
    backend = chat.web.backend
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    appended: list[ChatChunk] = [
        await backend.append_chunk(chat.token, reply.message_id, f"<{n}>") for n in range(5)
    ]
    seen: list[SseEvent] = []
    async with chat.web.client.get(_path(session)) as stream:
        seen += await _chunks(stream, 3)

    async def keep_appending() -> None:
        for n in range(5, 40):
            appended.append(await backend.append_chunk(chat.token, reply.message_id, f"<{n}>"))
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as tg:
        tg.start_soon(keep_appending)
        for want in (7, 40):
            headers = {"Last-Event-ID": str(seen[-1].id)}
            async with chat.web.client.get(_path(session), headers=headers) as stream:
                seen += await _chunks(stream, want - len(seen))
    assert [e.id for e in seen] == [c.sequence for c in appended]
    assert "".join(e.data["chunk"] for e in seen) == "".join(f"<{n}>" for n in range(40))


@pytest.mark.parametrize("resume", [False, True])
async def test_a_finished_reply_is_announced_after_all_its_chunks(chat: Chat, resume: bool) -> None:
    """A reader that stops at the list showing the reply completed has every chunk of it."""
    backend = chat.web.backend
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    headers = {"Last-Event-ID": "0"} if resume else {}
    async with chat.web.client.get(_path(session), headers=headers) as stream:
        assert (await next_sse(stream)).event == "messages"
        pieces = [f"[{n}]" for n in range(30)]
        for piece in pieces:
            await backend.append_chunk(chat.token, reply.message_id, piece)
        await backend.complete_message(chat.token, reply.message_id, "".join(pieces))
        received: list[str] = []
        while True:
            event = await next_sse(stream)
            if event.event == "chunk":
                received.append(event.data["chunk"])
            elif event.event == "messages" and event.data["messages"][-1]["completed"]:
                break
    assert received == pieces


async def test_after_query_resumes_and_the_header_wins(chat: Chat) -> None:
    """``?after=N`` resumes after N; a Last-Event-ID header takes precedence over it."""
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    chunks = [await chat.web.backend.append_chunk(chat.token, reply.message_id, p) for p in "abcd"]
    async with chat.web.client.get(f"{_path(session)}?after={chunks[1].sequence}") as stream:
        assert [e.data["chunk"] for e in await _chunks(stream, 2)] == ["c", "d"]
    headers = {"Last-Event-ID": str(chunks[2].sequence)}
    url = f"{_path(session)}?after={chunks[0].sequence}"
    async with chat.web.client.get(url, headers=headers) as stream:
        assert [e.data["chunk"] for e in await _chunks(stream, 1)] == ["d"]
        await chat.web.backend.append_chunk(chat.token, reply.message_id, "e")
        assert [e.data["chunk"] for e in await _chunks(stream, 1)] == ["e"]


async def test_a_fresh_stream_leaves_out_finished_replies(chat: Chat) -> None:
    """Without a resume point, only chunks of replies still being written are sent."""
    backend = chat.web.backend
    session = await chat.start()
    done = await _streaming_reply(chat, session, "first")
    await backend.append_chunk(chat.token, done.message_id, "old")
    await backend.complete_message(chat.token, done.message_id, "old")
    live = await _streaming_reply(chat, session, "second")
    await backend.append_chunk(chat.token, live.message_id, "new-1")
    await backend.append_chunk(chat.token, live.message_id, "new-2")
    async with chat.web.client.get(_path(session)) as stream:
        first = await next_sse(stream)
        assert first.event == "messages"
        assert [m["content"] for m in first.data["messages"]] == ["first", "old", "second", ""]
        events = await _chunks(stream, 2)
        assert [e.data["chunk"] for e in events] == ["new-1", "new-2"]
        assert {e.data["message_id"] for e in events} == {live.message_id}


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"Last-Event-ID": "abc"}, ""), ({"Last-Event-ID": "-1"}, ""), ({}, "?after=1.5")],
)
async def test_a_bad_resume_point_is_400(chat: Chat, headers: dict[str, str], query: str) -> None:
    """A resume point that is not a whole number gets 400 and one sentence, before streaming."""
    session = await chat.start()
    response = await chat.web.client.get(_path(session) + query, headers=headers)
    assert response.status == 400
    assert await response.json() == {"error": BAD_RESUME_POINT, "type": "InvalidInput"}


async def test_the_stream_sends_keepalive_comments(chat: Chat) -> None:
    """An idle stream writes comment lines so proxies keep it open."""
    session = await chat.start()
    async with chat.web.client.get(_path(session)) as stream:
        with anyio.fail_after(5):
            while (await stream.content.readline()) != b": keepalive\n":
                pass


async def test_the_stream_ends_with_an_error_when_the_session_goes(chat: Chat) -> None:
    """If the machine (and so the session) is deleted, one error event ends the stream."""
    session = await chat.start()
    async with chat.web.client.get(_path(session)) as stream:
        await next_sse(stream)
        await chat.web.backend.delete_machine(chat.user, chat.worker.machine_id)
        while (event := await next_sse(stream)).event != "error":
            pass
        assert event.data["type"] == "NotFound"


async def test_events_push_a_workers_sessions(chat: Chat) -> None:
    """``/api/events?worker_id=`` sends the worker's sessions at once and after each change."""
    worker_id = chat.worker.worker_id
    async with chat.web.client.get(f"/api/events?worker_id={worker_id}") as stream:
        while (event := await next_sse(stream)).event != "sessions":
            pass
        assert event.data == {"worker_id": worker_id, "sessions": []}
        status, body = await chat.post(f"/api/workers/{worker_id}/sessions", {"model": MODEL})
        assert status == 201
        while (event := await next_sse(stream)).event != "sessions":
            pass
        assert [s["chat_session_id"] for s in event.data["sessions"]] == [
            body["session"]["chat_session_id"]
        ]


async def test_events_for_another_users_worker_are_not_found(chat: Chat) -> None:
    """Asking for someone else's worker's sessions is 404 before any event is sent."""
    client = await chat.web.new_client()
    await chat.web.sign_in(client, "mallory")
    response = await client.get(f"/api/events?worker_id={chat.worker.worker_id}")
    assert response.status == 404


async def test_parts_stream_in_sequence_order_with_chunks_and_resume(chat: Chat) -> None:
    """Tool parts come as `part` events among the chunks, by sequence; a resume misses none."""
    backend = chat.web.backend
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    pending = ToolPart("bash", "call_1", ToolState(ToolStatus.PENDING))
    done = ToolPart("bash", "call_1", ToolState(ToolStatus.COMPLETED, "{}", "ls", "a.txt", 5))
    async with chat.web.client.get(_path(session)) as stream:
        assert (await next_sse(stream)).event == "messages"
        text = await backend.append_part_text(
            chat.token, reply.message_id, TextAppend("prt_t", 0, "Run ")
        )
        first = await backend.save_part(chat.token, reply.message_id, "prt_tool", pending)
        events = [await _sequenced(stream) for _ in range(2)]
    assert text.chunk is not None
    assert [(e.event, e.id) for e in events] == [
        ("chunk", text.chunk.sequence),
        ("part", first.sequence),
    ]
    assert (events[0].data["part_id"], events[0].data["offset"]) == ("prt_t", 0)
    assert events[1].data["part_id"] == "prt_tool"
    assert events[1].data["body"]["state"]["status"] == "pending"
    last = await backend.save_part(chat.token, reply.message_id, "prt_tool", done)
    headers = {"Last-Event-ID": str(first.sequence)}
    async with chat.web.client.get(_path(session), headers=headers) as stream:
        event = await _sequenced(stream)
    assert (event.event, event.id) == ("part", last.sequence)
    assert event.data["body"] == {
        "type": "tool",
        "tool": "bash",
        "call_id": "call_1",
        "state": {
            "status": "completed",
            "input": "{}",
            "title": "ls",
            "output": "a.txt",
            "output_size": 5,
            "error": None,
            "started_at": None,
            "ended_at": None,
        },
    }


async def test_a_fresh_stream_sends_the_parts_of_finished_replies(chat: Chat) -> None:
    """Opening a stream later still shows every tool part (their text is in the messages)."""
    backend = chat.web.backend
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_t", 0, "Done."))
    tool = ToolPart("write", "call_1", ToolState(ToolStatus.COMPLETED, "{}", "a.txt", "ok", 2))
    await backend.save_part(chat.token, reply.message_id, "prt_tool", tool)
    await backend.complete_message(chat.token, reply.message_id, "Done.")
    async with chat.web.client.get(_path(session)) as stream:
        kinds = []
        while (event := await next_sse(stream)).event != "part":
            kinds.append(event.event)
    # The finished reply's chunk is left out, its part is not.
    assert [kind for kind in kinds if kind != "requests"] == ["messages"]
    assert event.data["body"]["tool"] == "write"


async def test_permissions_and_questions_ride_the_stream(chat: Chat) -> None:
    """Asked and answered permission requests and questions arrive as ``requests`` events."""
    session = await chat.start()
    reply = await _streaming_reply(chat, session)
    backend = chat.web.backend
    async with chat.web.client.get(_path(session)) as stream:
        assert await _requests(stream) == {"permissions": [], "questions": []}
        permission = await backend.record_permission(
            chat.token, reply.message_id, PermissionAsk("p", "bash", "ls")
        )
        listed = await _requests(stream)
        assert [p["permission_id"] for p in listed["permissions"]] == [permission.permission_id]
        question = Question("Which colour?", "Colour", (QuestionOption("Red"),))
        asked = await backend.record_question(
            chat.token, reply.message_id, QuestionAsk("q", [question])
        )
        listed = await _requests(stream)
        assert [(q["question_id"], q["status"]) for q in listed["questions"]] == [
            (asked.question_id, "pending")
        ]
        await backend.answer_question(chat.user, asked.question_id, (("Red",),))
        listed = await _requests(stream)
        assert [(q["status"], q["answers"]) for q in listed["questions"]] == [
            ("answered", [["Red"]])
        ]


async def _requests(stream: aiohttp.ClientResponse) -> dict[str, list[dict[str, object]]]:
    """The next ``requests`` event's data, skipping other events."""
    while (event := await next_sse(stream)).event != "requests":
        pass
    return event.data  # type: ignore[no-any-return]

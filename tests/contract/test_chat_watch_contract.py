"""The backend contract for chat subscriptions: sessions, messages, chunks and machine work."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.domain.chat import ChatChunk, ChatSessionStatus, MessageStatus, SessionUpdate
from orchestrator.domain.errors import AuthenticationFailed, NotFound
from orchestrator.domain.ids import ChatSessionId, MessageId, UserId
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MODELS, Chat
from tests.contract.test_watch_contract import aclose, next_value, watching

pytestmark = pytest.mark.anyio


async def streaming(backend: Backend, alice: UserId, chat: Chat, text: str = "hi") -> MessageId:
    """Send a message and claim it; returns the ID of the streaming reply."""
    message = await backend.send_message(alice, chat.session.chat_session_id, text)
    return (await backend.claim_message(chat.token, message.message_id)).message_id


async def test_watch_sessions_yields_now_then_changes(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """watch_sessions yields the worker's sessions, then the list after each change."""
    async with watching(backend.watch_sessions(alice, chat.worker.worker_id)) as updates:
        assert await next_value(updates) == [chat.session]
        second = await backend.start_session(alice, chat.worker.worker_id, MODELS[1])
        assert await next_value(updates) == [second, chat.session]
        ended = await backend.end_session(alice, second.chat_session_id)
        assert await next_value(updates) == [chat.session, ended]
        titled = await backend.update_session(
            chat.token, chat.session.chat_session_id, SessionUpdate(title="T")
        )
        assert await next_value(updates) == [titled, ended]


async def test_watch_messages_follows_a_reply(backend: Backend, alice: UserId, chat: Chat) -> None:
    """watch_messages yields on send, claim and completion, but not on chunks."""
    session_id = chat.session.chat_session_id
    async with watching(backend.watch_messages(alice, session_id)) as updates:
        assert await next_value(updates) == []
        message = await backend.send_message(alice, session_id, "hi")
        assert await next_value(updates) == [message]
        reply = await backend.claim_message(chat.token, message.message_id)
        assert [m.status for m in await next_value(updates)] == ["processing", "streaming"]
        await backend.append_chunk(chat.token, reply.message_id, "Hel")
        await backend.complete_message(chat.token, reply.message_id, "Hello")
        asked, done = await next_value(updates)
        assert (asked.status, done.status, done.content) == ("completed", "completed", "Hello")


async def test_watch_chunks_yields_backlog_then_new_chunks(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The first value holds every chunk after the given sequence; later ones only new chunks."""
    session_id = chat.session.chat_session_id
    reply_id = await streaming(backend, alice, chat)
    written = [await backend.append_chunk(chat.token, reply_id, p) for p in ("a", "b", "c")]
    async with watching(backend.watch_chunks(alice, session_id, 1)) as updates:
        assert await next_value(updates) == written[1:]
        later = await backend.append_chunk(chat.token, reply_id, "d")
        assert await next_value(updates) == [later]
    async with watching(backend.watch_chunks(alice, session_id, 4)) as caught_up:
        assert await next_value(caught_up) == []


async def test_watch_chunks_resumes_without_gap_or_duplicate_while_streaming(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reader resuming mid-stream gets every later chunk exactly once, in order."""
    session_id = chat.session.chat_session_id
    reply_id = await streaming(backend, alice, chat)
    for index in range(5):
        await backend.append_chunk(chat.token, reply_id, f"early-{index}")
    total = 80
    seen: list[ChatChunk] = []

    async def write() -> None:
        nonlocal reply_id
        for index in range(total):
            if index == total // 2:  # the second half belongs to a second reply
                await backend.complete_message(chat.token, reply_id, "first")
                reply_id = await streaming(backend, alice, chat, "again")
            await backend.append_chunk(chat.token, reply_id, f"late-{index}")
            if index % 7 == 0:
                await anyio.sleep(0.001)

    async with (
        watching(backend.watch_chunks(alice, session_id, 3)) as updates,
        anyio.create_task_group() as tasks,
    ):
        tasks.start_soon(write)
        while len(seen) < 2 + total:
            seen.extend(await next_value(updates))
    assert [c.sequence for c in seen] == list(range(4, 6 + total))
    assert [c.chunk for c in seen[2:]] == [f"late-{i}" for i in range(total)]


async def test_watch_chunks_pages_through_a_long_backlog(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A backlog longer than one read arrives complete and in order, however it is split."""
    reply_id = await streaming(backend, alice, chat)
    for index in range(601):
        await backend.append_chunk(chat.token, reply_id, str(index))
    updates = backend.watch_chunks(alice, chat.session.chat_session_id, 0)
    seen: list[ChatChunk] = []
    try:
        while len(seen) < 601:
            page = await next_value(updates)
            assert page
            seen.extend(page)
    finally:
        await aclose(updates)
    assert [c.sequence for c in seen] == list(range(1, 602))


async def test_watch_chunks_of_someone_elses_or_a_deleted_session(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """Another user's (or no) session is NotFound; a session deleted while watched too."""
    for user, session_id in (
        (bob, chat.session.chat_session_id),
        (alice, ChatSessionId("chs_missing")),
    ):
        for updates in (
            backend.watch_chunks(user, session_id, 0),
            backend.watch_messages(user, session_id),
        ):
            with pytest.raises(NotFound, match=r"^No such chat session\.$"):
                await next_value(updates)
            await aclose(updates)
    sessions = backend.watch_sessions(bob, chat.worker.worker_id)
    with pytest.raises(NotFound, match=r"^No such worker\.$"):
        await next_value(sessions)
    await aclose(sessions)
    async with watching(backend.watch_chunks(alice, chat.session.chat_session_id, 0)) as updates:
        assert await next_value(updates) == []
        await backend.remove_worker(alice, chat.worker.worker_id)
        with pytest.raises(NotFound, match=r"^No such chat session\.$"):
            await next_value(updates)


async def test_watch_work_yields_each_step_of_a_reply(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """watch_work yields when a message arrives, is claimed, ends, and when a session ends."""
    session_id = chat.session.chat_session_id
    async with watching(backend.watch_work(chat.token)) as updates:
        [work] = await next_value(updates)
        assert work.session == chat.session
        message = await backend.send_message(alice, session_id, "hi")
        [work] = await next_value(updates)
        assert work.pending_messages == (message,)
        reply = await backend.claim_message(chat.token, message.message_id)
        [work] = await next_value(updates)
        assert (work.pending_messages, work.streaming_reply) == ((), reply)
        await backend.request_abort(alice, session_id)
        [work] = await next_value(updates)
        assert work.streaming_reply is not None
        assert work.streaming_reply.abort_requested
        await backend.end_reply(chat.token, reply.message_id, MessageStatus.ABORTED, "Stopped")
        [work] = await next_value(updates)
        assert work.streaming_reply is None
        await backend.end_session(alice, session_id)
        assert await next_value(updates) == []
        await backend.restore_session(alice, session_id)
        [work] = await next_value(updates)
        assert work.session.status is ChatSessionStatus.IDLE


async def test_watch_work_ends_with_the_machine(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Removing the worker empties the work list; deleting the machine fails its subscription."""
    async with watching(backend.watch_work(chat.token)) as updates:
        assert len(await next_value(updates)) == 1
        await backend.remove_worker(alice, chat.worker.worker_id)
        assert await next_value(updates) == []
        await backend.delete_machine(alice, chat.machine.machine_id)
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await next_value(updates)

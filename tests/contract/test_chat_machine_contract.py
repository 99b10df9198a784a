"""The backend contract for chat as a machine sees it: claims, streaming, endings, permissions."""

from __future__ import annotations

from collections.abc import Awaitable

import pytest

from orchestrator.domain.chat import (
    MAX_CHUNK_LENGTH,
    MAX_MESSAGE_LENGTH,
    MAX_REASON_LENGTH,
    MAX_REPLY_LENGTH,
    ChatSessionStatus,
    MessageRole,
    MessageStatus,
    PermissionAnswer,
    SessionUpdate,
    SessionWork,
)
from orchestrator.domain.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PayloadTooLarge,
)
from orchestrator.domain.ids import MachineToken, MessageId, UserId
from orchestrator.domain.ports import Backend
from orchestrator.domain.replies import PermissionAsk
from tests.contract.conftest import MODELS, Chat, MachineFactory, ask, claimed, work_now

pytestmark = pytest.mark.anyio

STREAMING, COMPLETED = MessageStatus.STREAMING, MessageStatus.COMPLETED


async def test_work_lists_every_open_session(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Open sessions are listed (even with nothing to do), oldest first; ended ones are not."""
    second = await backend.start_session(alice, chat.worker.worker_id, MODELS[0])
    ended = await backend.start_session(alice, chat.worker.worker_id, MODELS[0])
    await backend.end_session(alice, ended.chat_session_id)
    message = await backend.send_message(alice, second.chat_session_id, "hi")
    second = await backend.get_session(alice, second.chat_session_id)
    assert await work_now(backend, chat.token) == [
        SessionWork(chat.session),
        SessionWork(second, pending_messages=(message,)),
    ]


async def test_claim_creates_the_streaming_reply(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Claiming a pending message makes it processing and returns an empty streaming reply."""
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    assert (reply.role, reply.status, reply.content) == (MessageRole.ASSISTANT, STREAMING, "")
    assert (reply.reply_to, reply.chat_session_id) == (message.message_id, message.chat_session_id)
    assert not reply.abort_requested
    asked, listed_reply = await backend.list_messages(alice, chat.session.chat_session_id)
    assert asked.status is MessageStatus.PROCESSING
    assert listed_reply == reply
    [work] = await work_now(backend, chat.token)
    assert (work.pending_messages, work.streaming_reply) == ((), reply)
    assert await backend.list_session_messages(chat.token, chat.session.chat_session_id) == [
        asked,
        reply,
    ]


async def test_a_reply_records_the_model_that_produced_it(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reply carries its session's model from its claim to its end; a user message has none."""
    session = await backend.start_session(alice, chat.worker.worker_id, MODELS[1])
    message = await backend.send_message(alice, session.chat_session_id, "hi")
    reply = await backend.claim_message(chat.token, message.message_id)
    assert (message.model, reply.model) == (None, MODELS[1])
    await backend.complete_message(chat.token, reply.message_id, "done")
    listed = await backend.list_messages(alice, session.chat_session_id)
    assert [m.model for m in listed] == [None, MODELS[1]]
    assert [
        m.model for m in await backend.list_session_messages(chat.token, session.chat_session_id)
    ] == [None, MODELS[1]]


async def test_a_message_is_claimed_only_once(backend: Backend, alice: UserId, chat: Chat) -> None:
    """A second claim of the same message is a Conflict and creates no second reply."""
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(Conflict, match=r"^This message has already been claimed\.$"):
        await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(Conflict, match=r"already been claimed"):
        await backend.claim_message(chat.token, reply.message_id)
    assert len(await backend.list_messages(alice, chat.session.chat_session_id)) == 2


async def test_messages_are_claimed_in_order_one_at_a_time(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Only the oldest pending message may be claimed, and not while a reply streams."""
    first, second = await ask(backend, alice, chat, "one"), await ask(backend, alice, chat, "two")
    with pytest.raises(Conflict, match=r"^An older message of this session must be claimed"):
        await backend.claim_message(chat.token, second.message_id)
    reply = await backend.claim_message(chat.token, first.message_id)
    with pytest.raises(Conflict, match=r"still streaming"):
        await backend.claim_message(chat.token, second.message_id)
    await backend.complete_message(chat.token, reply.message_id, "done")
    second_reply = await backend.claim_message(chat.token, second.message_id)
    assert second_reply.reply_to == second.message_id


async def test_claim_in_a_terminated_session_waits_for_restore(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An ended session's pending messages stay pending, out of the work list, until restored."""
    message = await ask(backend, alice, chat)
    await backend.end_session(alice, chat.session.chat_session_id)
    assert await work_now(backend, chat.token) == []
    with pytest.raises(Conflict, match=r"^This session has ended\."):
        await backend.claim_message(chat.token, message.message_id)
    [listed] = await backend.list_messages(alice, chat.session.chat_session_id)
    assert listed.status is MessageStatus.PENDING
    await backend.restore_session(alice, chat.session.chat_session_id)
    [work] = await work_now(backend, chat.token)
    assert work.pending_messages == (listed,)
    await backend.claim_message(chat.token, message.message_id)


async def test_chunk_sequences_grow_across_replies_of_a_session(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Chunks are numbered 1, 2, ... per session, across every reply of it."""
    sequences = []
    for text in ("first", "second"):
        reply = await backend.claim_message(
            chat.token, (await ask(backend, alice, chat, text)).message_id
        )
        for part in ("a", "b"):
            chunk = await backend.append_chunk(chat.token, reply.message_id, part)
            assert (chunk.message_id, chunk.chunk) == (reply.message_id, part)
            assert chunk.chat_session_id == chat.session.chat_session_id
            sequences.append(chunk.sequence)
        await backend.complete_message(chat.token, reply.message_id, "ab")
    assert sequences == [1, 2, 3, 4]
    other = await backend.start_session(alice, chat.worker.worker_id, MODELS[0])
    message = await backend.send_message(alice, other.chat_session_id, "x")
    reply = await backend.claim_message(chat.token, message.message_id)
    chunk = await backend.append_chunk(chat.token, reply.message_id, "own count")
    assert chunk.sequence == 1
    # Streaming need not write the session per chunk (Convex does not); its end does.
    await backend.complete_message(chat.token, reply.message_id, "own count")
    session = await backend.get_session(alice, other.chat_session_id)
    assert session.last_activity >= chunk.timestamp


async def test_append_chunk_refuses_bad_chunks_and_finished_replies(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Empty or oversized chunks, user messages and ended replies are refused."""
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(InvalidInput, match=r"^A chunk must not be empty\.$"):
        await backend.append_chunk(chat.token, reply.message_id, "")
    with pytest.raises(PayloadTooLarge):
        await backend.append_chunk(chat.token, reply.message_id, "x" * (MAX_CHUNK_LENGTH + 1))
    with pytest.raises(Conflict, match=r"^That message is not a reply\.$"):
        await backend.append_chunk(chat.token, message.message_id, "x")
    first = await backend.append_chunk(chat.token, reply.message_id, "x" * MAX_CHUNK_LENGTH)
    assert first.sequence == 1
    await backend.complete_message(chat.token, reply.message_id, "done")
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.append_chunk(chat.token, reply.message_id, "late")
    with pytest.raises(NotFound, match=r"^No such message\.$"):
        await backend.append_chunk(chat.token, MessageId("msg_missing"), "x")


async def test_complete_message_writes_the_reply_once(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Completing stores the whole text and completes the question; it happens once."""
    reply = await claimed(backend, alice, chat)
    await backend.append_chunk(chat.token, reply.message_id, "Hel")
    done = await backend.complete_message(chat.token, reply.message_id, "Hello!")
    assert (done.status, done.content, done.error, done.completed) == (
        COMPLETED,
        "Hello!",
        None,
        True,
    )
    asked, listed = await backend.list_messages(alice, chat.session.chat_session_id)
    assert (asked.status, listed) == (COMPLETED, done)
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.complete_message(chat.token, reply.message_id, "again")
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.end_reply(chat.token, reply.message_id, MessageStatus.FAILED, "late")
    [work] = await work_now(backend, chat.token)
    assert work.streaming_reply is None


async def test_complete_message_refuses_an_oversized_reply(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reply over the size limit is refused and the reply keeps streaming."""
    reply = await claimed(backend, alice, chat)
    with pytest.raises(PayloadTooLarge):
        await backend.complete_message(chat.token, reply.message_id, "x" * (MAX_REPLY_LENGTH + 1))
    [work] = await work_now(backend, chat.token)
    assert work.streaming_reply == reply


@pytest.mark.parametrize(
    "status", [MessageStatus.FAILED, MessageStatus.INTERRUPTED, MessageStatus.ABORTED]
)
async def test_end_reply_keeps_the_streamed_text(
    backend: Backend, alice: UserId, chat: Chat, status: MessageStatus
) -> None:
    """A reply ending badly keeps its chunks as content, the reason as error; the question ends."""
    reply = await claimed(backend, alice, chat)
    for part in ("Hel", "lo ", "wor"):
        await backend.append_chunk(chat.token, reply.message_id, part)
    ended = await backend.end_reply(chat.token, reply.message_id, status, "Agent stopped.")
    assert (ended.status, ended.content, ended.error) == (status, "Hello wor", "Agent stopped.")
    assert ended.completed
    asked, _ = await backend.list_messages(alice, chat.session.chat_session_id)
    assert asked.status is COMPLETED
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.end_reply(chat.token, reply.message_id, status, "twice")


@pytest.mark.parametrize(
    "status", [MessageStatus.COMPLETED, MessageStatus.STREAMING, MessageStatus.PENDING]
)
async def test_end_reply_refuses_other_statuses(
    backend: Backend, alice: UserId, chat: Chat, status: MessageStatus
) -> None:
    """Only failed, interrupted and aborted are endings; the reply keeps streaming."""
    reply = await claimed(backend, alice, chat)
    with pytest.raises(InvalidInput, match=r"^A reply can only end as failed, interrupted or"):
        await backend.end_reply(chat.token, reply.message_id, status, "no")
    with pytest.raises(PayloadTooLarge):
        await backend.end_reply(
            chat.token, reply.message_id, MessageStatus.FAILED, "x" * (MAX_REASON_LENGTH + 1)
        )
    [work] = await work_now(backend, chat.token)
    assert work.streaming_reply == reply


async def test_abort_request_reaches_the_machine(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Stop marks the streaming reply; the machine sees it and ends the reply as aborted."""
    session_id = chat.session.chat_session_id
    reply = await claimed(backend, alice, chat)
    flagged = await backend.request_abort(alice, session_id)
    assert flagged is not None
    assert (flagged.message_id, flagged.abort_requested) == (reply.message_id, True)
    assert await backend.request_abort(alice, session_id) == flagged
    [work] = await work_now(backend, chat.token)
    assert work.streaming_reply == flagged
    ended = await backend.end_reply(chat.token, reply.message_id, MessageStatus.ABORTED, "Stopped")
    assert ended.status is MessageStatus.ABORTED
    assert await backend.request_abort(alice, session_id) is None


async def test_ending_a_session_stops_its_reply(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An ended session stays in the work list while its reply streams, flagged to stop."""
    reply = await claimed(backend, alice, chat)
    queued = await ask(backend, alice, chat, "queued")
    ended = await backend.end_session(alice, chat.session.chat_session_id)
    [work] = await work_now(backend, chat.token)
    assert work.session == ended
    assert work.pending_messages == ()
    assert work.streaming_reply is not None
    assert (work.streaming_reply.message_id, work.streaming_reply.abort_requested) == (
        reply.message_id,
        True,
    )
    await backend.end_reply(chat.token, reply.message_id, MessageStatus.ABORTED, "Ended")
    assert await work_now(backend, chat.token) == []
    messages = await backend.list_messages(alice, chat.session.chat_session_id)
    assert [m.status for m in messages] == [COMPLETED, MessageStatus.ABORTED, "pending"]
    assert messages[2] == queued


async def test_a_restarted_machine_finds_its_half_streamed_reply(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """After a restart the earlier claim shows as streaming_reply; marking it interrupted frees the queue."""  # noqa: E501
    reply = await claimed(backend, alice, chat, "one")
    await backend.append_chunk(chat.token, reply.message_id, "half")
    second = await ask(backend, alice, chat, "two")
    [work] = await work_now(backend, chat.token)
    assert (work.streaming_reply, work.pending_messages) == (reply, (second,))
    await backend.end_reply(chat.token, reply.message_id, MessageStatus.INTERRUPTED, "Restarted")
    assert (await backend.claim_message(chat.token, second.message_id)).reply_to == (
        second.message_id
    )


async def test_update_session(backend: Backend, alice: UserId, chat: Chat) -> None:
    """The machine records idle/active, the agent's session ID and a title; None keeps a field."""
    session_id = chat.session.chat_session_id
    updated = await backend.update_session(
        chat.token,
        session_id,
        SessionUpdate(status=ChatSessionStatus.IDLE, agent_session_id="ses_1"),
    )
    assert (updated.status, updated.agent_session_id, updated.title) == ("idle", "ses_1", None)
    updated = await backend.update_session(
        chat.token, session_id, SessionUpdate(title="  Fix the build ")
    )
    assert (updated.status, updated.agent_session_id, updated.title) == (
        "idle",
        "ses_1",
        "Fix the build",
    )
    updated = await backend.update_session(
        chat.token, session_id, SessionUpdate(status=ChatSessionStatus.ACTIVE)
    )
    assert updated.status is ChatSessionStatus.ACTIVE
    assert updated.last_activity == chat.session.last_activity
    assert await backend.get_session(alice, session_id) == updated


async def test_update_session_refusals(backend: Backend, alice: UserId, chat: Chat) -> None:
    """A machine cannot terminate a session, set a blank title, or change an ended session."""
    session_id = chat.session.chat_session_id
    with pytest.raises(InvalidTransition, match=r"^Only the owner of a session can end it\.$"):
        await backend.update_session(
            chat.token, session_id, SessionUpdate(status=ChatSessionStatus.TERMINATED)
        )
    with pytest.raises(InvalidInput, match=r"^A title must not be empty\.$"):
        await backend.update_session(chat.token, session_id, SessionUpdate(title="   "))
    with pytest.raises(PayloadTooLarge):
        await backend.update_session(chat.token, session_id, SessionUpdate(title="t" * 201))
    with pytest.raises(InvalidInput):
        await backend.update_session(chat.token, session_id, SessionUpdate(agent_session_id=""))
    await backend.end_session(alice, session_id)
    with pytest.raises(Conflict, match=r"^This session has ended\."):
        await backend.update_session(chat.token, session_id, SessionUpdate(title="late"))
    assert (await backend.get_session(alice, session_id)).title is None


async def test_another_machine_cannot_touch_the_chat(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """A machine reaches only its own workers' sessions; a wrong secret is refused outright."""
    session_id = chat.session.chat_session_id
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    request = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("p", "bash", "ls")
    )
    await backend.answer_permission(alice, request.permission_id, PermissionAnswer.ONCE)
    _, other = await new_machine("other", online=True)
    assert await work_now(backend, other) == []
    on_session: tuple[Awaitable[object], ...] = (
        backend.list_session_messages(other, session_id),
        backend.update_session(other, session_id, SessionUpdate(title="mine")),
    )
    for call in on_session:
        with pytest.raises(NotFound, match=r"^No such chat session\.$"):
            await call
    on_message: tuple[Awaitable[object], ...] = (
        backend.claim_message(other, message.message_id),
        backend.append_chunk(other, reply.message_id, "x"),
        backend.complete_message(other, reply.message_id, "x"),
        backend.end_reply(other, reply.message_id, MessageStatus.FAILED, "x"),
        backend.record_permission(other, reply.message_id, PermissionAsk("p", "bash", "ls")),
    )
    for call in on_message:
        with pytest.raises(NotFound, match=r"^No such message\.$"):
            await call
    with pytest.raises(NotFound, match=r"^No such permission request\.$"):
        await backend.resolve_permission(other, request.permission_id)
    wrong = MachineToken(chat.machine.machine_id, "sec_wrong")
    with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
        await backend.append_chunk(wrong, reply.message_id, "x")
    with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
        await work_now(backend, wrong)
    [work] = await work_now(backend, chat.token)
    assert work.streaming_reply == reply
    assert work.session.title is None


async def test_work_with_20_mb_of_queued_messages_lists_the_head_of_each_queue(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """200 queued messages of 100,000 characters read as work: each session's oldest first."""
    sessions = [chat.session] + [
        await backend.start_session(alice, chat.worker.worker_id, MODELS[0]) for _ in range(9)
    ]
    sent: dict[str, list[MessageId]] = {s.chat_session_id: [] for s in sessions}
    for n in range(200):
        session = sessions[n % len(sessions)]
        text = f"{n:03d}" + "x" * (MAX_MESSAGE_LENGTH - 3)
        message = await backend.send_message(alice, session.chat_session_id, text)
        sent[session.chat_session_id].append(message.message_id)
    work = await work_now(backend, chat.token)
    assert [w.session.chat_session_id for w in work] == [s.chat_session_id for s in sessions]
    assert work[0].pending_messages, "the oldest queued message is always listed"
    for item in work:
        listed = [m.message_id for m in item.pending_messages]
        assert listed == sent[item.session.chat_session_id][: len(listed)]

"""The backend contract for long replies: stored and read back whole, deleted in bounded steps.

A reply may hold :data:`~orchestrator.domain.chat.MAX_REPLY_LENGTH` characters, which
is up to 4 MB of UTF-8: more than one Convex document holds (1 MiB), so a backend
that keeps documents splits the text and joins it again when it is read.
"""

from __future__ import annotations

import pytest

from orchestrator.domain.chat import MAX_CHUNK_LENGTH, MAX_REPLY_LENGTH, ChatMessage, MessageStatus
from orchestrator.domain.errors import NotFound, PayloadTooLarge
from orchestrator.domain.ids import UserId
from orchestrator.domain.parts import MAX_PART_TEXT, ReasoningPart, TextAppend, TextKind, TextPart
from orchestrator.domain.ports import Backend
from tests.contract.conftest import Chat, ask, claimed

pytestmark = pytest.mark.anyio


def long_text(characters: int) -> str:
    """``characters`` characters, mostly three-byte ones, with one- and four-byte ones mixed in."""
    unit = "€漢字語文中🙂🙂🙂\n"  # 10 characters, 31 bytes of UTF-8
    return (unit * (characters // len(unit) + 1))[:characters]


async def stream_text(backend: Backend, chat: Chat, reply: ChatMessage, whole: TextAppend) -> None:
    """Append ``whole`` as a machine streams it: deltas of at most MAX_CHUNK_LENGTH characters."""
    for start in range(0, len(whole.text), MAX_CHUNK_LENGTH):
        piece = whole.text[start : start + MAX_CHUNK_LENGTH]
        delta = TextAppend(whole.part_id, whole.offset + start, piece, whole.kind)
        await backend.append_part_text(chat.token, reply.message_id, delta)


async def test_a_3_mb_reply_is_stored_and_read_back_whole(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reply of a million characters (3.1 MB of UTF-8) reads back whole, by user and machine."""
    text = long_text(MAX_REPLY_LENGTH)
    assert len(text.encode()) > 3_000_000
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    await backend.append_chunk(chat.token, reply.message_id, text[:1000])
    done = await backend.complete_message(chat.token, reply.message_id, text)
    assert done.status is MessageStatus.COMPLETED

    session_id = chat.session.chat_session_id
    listed = await backend.list_messages(alice, session_id)
    history = await backend.list_session_messages(chat.token, session_id)
    for messages in (listed, history):
        assert [m.message_id for m in messages] == [message.message_id, reply.message_id]
        assert messages[1].content == text


async def test_a_long_reply_ended_early_keeps_its_streamed_text_whole(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reply interrupted after 1.5 MB of streamed text keeps all of it."""
    text = long_text(500_000)
    reply = await claimed(backend, alice, chat)
    for start in range(0, len(text), 50_000):
        await backend.append_chunk(chat.token, reply.message_id, text[start : start + 50_000])
    ended = await backend.end_reply(
        chat.token, reply.message_id, MessageStatus.INTERRUPTED, "The machine stopped."
    )
    assert ended.content == text
    listed = await backend.list_messages(alice, chat.session.chat_session_id)
    assert listed[-1].content == text


async def test_a_worker_with_17_replies_of_a_million_characters_is_removed(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """17 replies of 1,000,000 characters: history reads back, and the worker is removed."""
    session_id = chat.session.chat_session_id
    text = "x" * MAX_REPLY_LENGTH
    for _ in range(17):
        reply = await claimed(backend, alice, chat)
        await backend.complete_message(chat.token, reply.message_id, text)
    history = await backend.list_session_messages(chat.token, session_id)
    assert [len(m.content) for m in history if m.role.value == "assistant"] == [len(text)] * 17

    await backend.remove_worker(alice, chat.worker.worker_id)

    assert chat.worker.worker_id not in {
        w.worker_id for w in await backend.list_workers(alice, chat.machine.machine_id)
    }
    with pytest.raises(NotFound):
        await backend.list_messages(alice, session_id)


async def test_a_text_part_of_a_million_characters_streams_and_reads_back_whole(
    backend: Backend, alice: UserId, chat: Chat, reply: ChatMessage
) -> None:
    """A 3.1 MB text part grown by deltas, then saved whole, lists whole during and after."""
    text = long_text(MAX_PART_TEXT)
    half = len(text) // 2
    session_id = chat.session.chat_session_id
    await stream_text(backend, chat, reply, TextAppend("prt_t", 0, text[:half]))
    [streaming] = await backend.list_parts(alice, session_id, reply.message_id)
    assert streaming.body == TextPart(text[:half])
    saved = await backend.save_part(chat.token, reply.message_id, "prt_t", TextPart(text))
    assert saved.body == TextPart(text)
    with pytest.raises(PayloadTooLarge):
        await backend.append_part_text(
            chat.token, reply.message_id, TextAppend("prt_t", len(text), "x")
        )
    await backend.complete_message(chat.token, reply.message_id, text)
    [part] = await backend.list_parts(alice, session_id)
    assert part.body == TextPart(text)
    assert [m.content for m in await backend.list_messages(alice, session_id)][1] == text


async def test_a_reasoning_part_of_a_million_characters_streams_and_reads_back_whole(
    backend: Backend, alice: UserId, chat: Chat, reply: ChatMessage
) -> None:
    """A 3.1 MB reasoning part grown by deltas lists whole during and after its reply."""
    text = long_text(MAX_PART_TEXT)
    session_id = chat.session.chat_session_id
    grown = 6 * MAX_CHUNK_LENGTH  # past 320,000 characters, where one document used to end
    first = TextAppend("prt_r", 0, text[:grown], TextKind.REASONING)
    await stream_text(backend, chat, reply, first)
    [growing] = await backend.list_parts(alice, session_id, reply.message_id)
    assert growing.body == ReasoningPart(text[:grown])
    rest = TextAppend("prt_r", grown, text[grown:], TextKind.REASONING)
    await stream_text(backend, chat, reply, rest)
    with pytest.raises(PayloadTooLarge, match=r"^A text part must be at most 1000000 characters"):
        await backend.append_part_text(
            chat.token, reply.message_id, TextAppend("prt_r", len(text), "x", TextKind.REASONING)
        )
    await backend.complete_message(chat.token, reply.message_id, "done")
    [part] = await backend.list_parts(alice, session_id)
    assert part.body == ReasoningPart(text)

"""The live relay's text in memory: grown by appends, whole wherever a part is shown or compared.

The relay keeps each part's streamed text as appended pieces (no copy of the
reply per delta); these check that every place that needs the whole part --
a reasoning part shown to a late reader, a reader attaching mid-reply, a part
replaced whole -- sees all the text, and that what is stored is the same.
"""

from __future__ import annotations

import pytest

from orchestrator.application.live import LiveRelay
from orchestrator.domain.chat import ChatChunk, ChatMessage
from orchestrator.domain.ids import UserId
from orchestrator.domain.live import LivePart, LiveText, ReasoningChunk
from orchestrator.domain.parts import MessagePart, PartId, ReasoningPart, TextKind, TextPart
from orchestrator.domain.ports import Backend, LiveEventStore
from orchestrator.testing.fakes import FakeClock
from tests.contract.conftest import SQLITE_ONLY, Chat, claimed

#: The relay stores into the embedded backend alone (as in the live-store contract).
pytestmark = [pytest.mark.anyio, SQLITE_ONLY]

THINK, SAY = PartId("prt_think"), PartId("prt_say")


@pytest.fixture
def relay(backend: Backend) -> LiveRelay:
    """A relay over the backend that stores only when asked (its window is an hour)."""
    assert isinstance(backend, LiveEventStore)
    return LiveRelay(backend, FakeClock(), window=3600)


def _delta(reply: ChatMessage, part: PartId, kind: TextKind, offset: int, text: str) -> LiveText:
    return LiveText(reply.chat_session_id, reply.message_id, part, kind, offset, text)


async def test_reasoning_is_shown_whole_once_then_appended_and_whole_to_a_late_reader(
    backend: Backend, alice: UserId, chat: Chat, relay: LiveRelay
) -> None:
    """A reasoning part is shown whole at its first delta, then each delta goes as a
    reasoning chunk at its offset; a late reader gets the part whole, as stored."""
    reply = await claimed(backend, alice, chat)
    live = await relay.session(reply.chat_session_id)
    early = live.attach().subscriber
    pieces = ["Let ", "me ", "think ", "about ", "it."]
    offset = 0
    shown = []
    for piece in pieces:
        await relay.receive(chat.token, _delta(reply, THINK, TextKind.REASONING, offset, piece))
        offset += len(piece)
        shown += early.take()  # a reader keeping up (waiting deltas would go as one)
    first, *rest = shown
    assert isinstance(first, MessagePart)
    assert first.body == ReasoningPart("Let ")
    assert all(isinstance(e, ReasoningChunk) for e in rest)
    appended = [(e.part_id, e.offset, e.chunk) for e in rest if isinstance(e, ChatChunk)]
    assert appended == [
        (THINK, 4, "me "),
        (THINK, 7, "think "),
        (THINK, 13, "about "),
        (THINK, 19, "it."),
    ]
    late = live.attach()
    [last] = [e for e in late.unstored if e.sequence == rest[-1].sequence]
    assert isinstance(last, MessagePart)
    assert last.body == ReasoningPart("".join(pieces))
    await relay.flush(reply.chat_session_id)
    [stored] = await backend.list_parts(alice, reply.chat_session_id, reply.message_id)
    assert stored.body == ReasoningPart("".join(pieces))


async def test_a_stale_whole_copy_after_deltas_changes_nothing_and_a_longer_one_replaces(
    backend: Backend, alice: UserId, chat: Chat, relay: LiveRelay
) -> None:
    """A whole copy shorter than the streamed text is ignored; a longer one is the new text."""
    reply = await claimed(backend, alice, chat)
    session_id = reply.chat_session_id
    reader = (await relay.session(session_id)).attach().subscriber
    for offset, piece in [(0, "one "), (4, "two "), (8, "three ")]:
        assert await relay.receive(chat.token, _delta(reply, SAY, TextKind.TEXT, offset, piece))
    stale = LivePart(session_id, reply.message_id, SAY, TextPart("one "))
    assert await relay.receive(chat.token, stale) is None
    longer = LivePart(session_id, reply.message_id, SAY, TextPart("one two three four "))
    assert await relay.receive(chat.token, longer) is not None
    overlap = _delta(reply, SAY, TextKind.TEXT, 14, "four five")  # "four " is held already
    assert await relay.receive(chat.token, overlap) is not None
    [*_, tail] = reader.take()
    assert isinstance(tail, ChatChunk)
    assert (tail.offset, tail.chunk) == (19, "five")
    await relay.flush(session_id)
    [stored] = await backend.list_parts(alice, session_id, reply.message_id)
    assert stored.body == TextPart("one two three four five")


async def test_a_resent_delta_is_not_numbered_and_an_overlap_shows_only_new_text(
    backend: Backend, alice: UserId, chat: Chat, relay: LiveRelay
) -> None:
    """Text already held takes no sequence; an overlapping delta shows what it adds, where."""
    reply = await claimed(backend, alice, chat)
    reader = (await relay.session(reply.chat_session_id)).attach().subscriber
    shown = []
    assert await relay.receive(chat.token, _delta(reply, SAY, TextKind.TEXT, 0, "hello "))
    shown += reader.take()  # a reader keeping up (waiting deltas would go as one)
    assert await relay.receive(chat.token, _delta(reply, SAY, TextKind.TEXT, 0, "hel")) is None
    assert await relay.receive(chat.token, _delta(reply, SAY, TextKind.TEXT, 3, "lo world"))
    shown += reader.take()
    chunks = [(c.offset, c.chunk) for c in shown if isinstance(c, ChatChunk)]
    assert chunks == [(0, "hello "), (6, "world")]

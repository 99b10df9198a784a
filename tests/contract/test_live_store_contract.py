"""The durable half of the live relay: numbered events stored once, under the numbers given.

Only a backend a server stores live events in implements it: the embedded one (a
Convex deployment is written by its machines directly, never through the relay), so
this suite runs on SQLite alone rather than skipping the others.
"""

from __future__ import annotations

import pytest

from orchestrator.domain.errors import NotFound
from orchestrator.domain.ids import ChatSessionId, UserId
from orchestrator.domain.live import LivePart, LiveText, SequencedEvent
from orchestrator.domain.parts import (
    MessagePart,
    PartId,
    TextKind,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.ports import Backend
from tests.contract.conftest import (
    SQLITE_ONLY,
    Chat,
    LiveReply,
    MachineFactory,
    events_after,
)

pytestmark = [pytest.mark.anyio, SQLITE_ONLY]


async def test_numbered_events_are_stored_once_under_their_numbers(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """A batch stored twice adds nothing; chunks and parts read back under the numbers given."""
    store, reply, session_id = live
    text = PartId("prt_t")
    tool = ToolPart("bash", "c1", ToolState(ToolStatus.RUNNING))
    batch = [
        SequencedEvent(LiveText(session_id, reply.message_id, text, TextKind.TEXT, 0, "ab"), 101),
        SequencedEvent(LiveText(session_id, reply.message_id, text, TextKind.TEXT, 2, "cd"), 102),
        SequencedEvent(LivePart(session_id, reply.message_id, PartId("prt_x"), tool), 103),
    ]
    await store.store_events(chat.token, batch)
    await store.store_events(chat.token, batch)  # a re-send after lost acknowledgements
    events = await events_after(backend, alice, chat, 0)
    # The run of deltas is one chunk under its last number (one row, not one per delta).
    assert [(type(e).__name__, e.sequence, getattr(e, "chunk", None)) for e in events] == [
        ("ChatChunk", 102, "abcd"),
        ("MessagePart", 103, None),
    ]
    assert await store.last_sequence(session_id) == 103
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [getattr(p.body, "text", None) for p in parts] == ["abcd", None]
    # A reader that saw 101 live gets exactly the text after it.
    resumed = await events_after(backend, alice, chat, 101)
    assert [
        (e.sequence, getattr(e, "chunk", None), getattr(e, "offset", None)) for e in resumed
    ] == [
        (102, "cd", 2),
        (103, None, None),
    ]


async def test_a_run_stored_in_part_before_resumes_exactly(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """A batch whose first deltas were stored already adds only the rest, resumable per delta."""
    store, reply, session_id = live
    text = PartId("prt_t")

    def delta(offset: int, piece: str, sequence: int) -> SequencedEvent:
        event = LiveText(session_id, reply.message_id, text, TextKind.TEXT, offset, piece)
        return SequencedEvent(event, sequence)

    await store.store_events(chat.token, [delta(0, "ab", 11)])
    await store.store_events(
        chat.token, [delta(0, "ab", 11), delta(2, "cd", 12), delta(4, "ef", 13)]
    )
    chunks = await events_after(backend, alice, chat, 0)
    assert [(e.sequence, getattr(e, "chunk", None)) for e in chunks] == [(11, "ab"), (13, "cdef")]
    for after, expected in ((11, "cdef"), (12, "ef"), (13, None)):
        resumed = await events_after(backend, alice, chat, after)
        assert [getattr(e, "chunk", None) for e in resumed] == ([expected] if expected else [])
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [getattr(p.body, "text", None) for p in parts] == ["abcdef"]


async def test_reply_state_is_only_the_machines_streaming_reply_in_that_session(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply, new_machine: MachineFactory
) -> None:
    """Another machine's reply, or a reply named under another session, is not found."""
    store, reply, session_id = live
    event = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 0, "hi")
    await store.store_events(chat.token, [SequencedEvent(event, 5)])
    state = await store.reply_state(chat.token, session_id, reply.message_id)
    assert state.message.message_id == reply.message_id
    assert [p.part_id for p in state.parts] == ["p"]
    assert isinstance(state.parts[0], MessagePart)
    assert state.next_position == state.parts[0].position + 1
    _, other = await new_machine(online=True)
    with pytest.raises(NotFound):
        await store.reply_state(other, session_id, reply.message_id)
    with pytest.raises(NotFound):
        await store.reply_state(chat.token, ChatSessionId("chs_other"), reply.message_id)
    with pytest.raises(NotFound):
        await store.store_events(other, [SequencedEvent(event, 6)])

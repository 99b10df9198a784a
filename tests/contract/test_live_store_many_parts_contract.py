"""The live store (SQLite alone, see test_live_store_contract) takes 10,000 parts in one batch."""

from __future__ import annotations

import pytest

from orchestrator.domain.ids import UserId
from orchestrator.domain.live import LivePart, SequencedEvent
from orchestrator.domain.parts import PartId, ToolPart, ToolState, ToolStatus
from orchestrator.domain.ports import Backend, LiveEventStore
from tests.contract.conftest import SQLITE_ONLY, Chat, claimed, events_after

pytestmark = [pytest.mark.anyio, SQLITE_ONLY]


async def test_ten_thousand_parts_in_one_batch_are_stored_and_read_back_in_order(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """One batch of 10,000 new parts: each stored once at its own position and sequence."""
    assert isinstance(backend, LiveEventStore)
    reply = await claimed(backend, alice, chat)
    session_id = chat.session.chat_session_id
    tool = ToolPart("bash", "c1", ToolState(ToolStatus.COMPLETED, output="ok"))
    batch = [
        SequencedEvent(LivePart(session_id, reply.message_id, PartId(f"prt_{i:05d}"), tool), i + 1)
        for i in range(10_000)
    ]
    await backend.store_events(chat.token, batch)
    await backend.store_events(chat.token, batch[-10:])  # a re-send adds nothing
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [p.part_id for p in parts] == [f"prt_{i:05d}" for i in range(len(parts))]
    assert len({p.position for p in parts}) == len(parts)
    resumed = await events_after(backend, alice, chat, 9_000)
    assert [e.sequence for e in resumed][:3] == [9_001, 9_002, 9_003]
    assert await backend.last_sequence(session_id) == 10_000

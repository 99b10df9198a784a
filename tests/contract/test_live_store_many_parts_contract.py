"""The live store (SQLite alone, see test_live_store_contract) takes 10,000 parts in one batch."""

from __future__ import annotations

import pytest

from orchestrator.domain.ids import UserId
from orchestrator.domain.live import LivePart, SequencedEvent
from orchestrator.domain.parts import PartId, ToolPart, ToolState, ToolStatus
from orchestrator.domain.ports import Backend
from tests.contract.conftest import SQLITE_ONLY, Chat, LiveReply, events_after

pytestmark = [pytest.mark.anyio, SQLITE_ONLY]


async def test_ten_thousand_parts_in_one_batch_are_stored_and_read_back_in_order(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """One batch of 10,000 new parts: each stored once at its own position and sequence."""
    store, reply, session_id = live
    tool = ToolPart("bash", "c1", ToolState(ToolStatus.COMPLETED, output="ok"))
    batch = [
        SequencedEvent(LivePart(session_id, reply.message_id, PartId(f"prt_{i:05d}"), tool), i + 1)
        for i in range(10_000)
    ]
    await store.store_events(chat.token, batch)
    await store.store_events(chat.token, batch[-10:])  # a re-send adds nothing
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [p.part_id for p in parts] == [f"prt_{i:05d}" for i in range(len(parts))]
    assert len({p.position for p in parts}) == len(parts)
    resumed = await events_after(backend, alice, chat, 9_000)
    assert [e.sequence for e in resumed][:3] == [9_001, 9_002, 9_003]
    assert await store.last_sequence(session_id) == 10_000

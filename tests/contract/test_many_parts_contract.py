"""A turn of 10,000 parts: every part stored once, listed in order (bounded), streamed and resumed.

Runs on the in-memory fake and SQLite (a Convex stand-in would spend minutes on
10,000 mutations; its paging is covered by its own suite).
"""

from __future__ import annotations

import anyio
import pytest

from orchestrator.domain.chat import ChatChunk
from orchestrator.domain.ids import UserId
from orchestrator.domain.parts import (
    MAX_LISTED_PARTS,
    MessagePart,
    StreamEvent,
    TextAppend,
    TextPart,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.ports import Backend
from tests.contract.conftest import Chat, claimed

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True),
]

PARTS = 10_000


def part_id(index: int) -> str:
    """Part IDs that sort in the order the parts were made."""
    return f"prt_{index:05d}"


async def _events(
    backend: Backend, alice: UserId, chat: Chat, after: int, count: int
) -> list[StreamEvent]:
    """The first ``count`` events after ``after``, read page by page."""
    events: list[StreamEvent] = []
    watched = backend.watch_events(alice, chat.session.chat_session_id, after)
    try:
        with anyio.fail_after(60):
            while len(events) < count:
                events += await anext(watched)
            return events
    finally:
        await watched.aclose()  # type: ignore[attr-defined]


async def test_a_turn_of_ten_thousand_parts_is_stored_listed_streamed_and_resumed(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Text and tool parts alternate; each is stored once and streams once, resumable anywhere."""
    reply = await claimed(backend, alice, chat)
    for index in range(PARTS):
        if index % 2:
            tool = ToolPart("bash", f"call_{index}", ToolState(ToolStatus.COMPLETED, output="ok"))
            await backend.save_part(chat.token, reply.message_id, part_id(index), tool)
        else:
            await backend.append_part_text(
                chat.token, reply.message_id, TextAppend(part_id(index), 0, f"w{index} ")
            )

    listed = await backend.list_parts(alice, chat.session.chat_session_id, reply.message_id)
    assert [p.part_id for p in listed] == [part_id(i) for i in range(min(PARTS, MAX_LISTED_PARTS))]
    assert isinstance(listed[0].body, TextPart)
    assert listed[0].body.text == "w0 "

    streamed = await _events(backend, alice, chat, 0, PARTS)
    assert len(streamed) == PARTS
    sequences = [e.sequence for e in streamed]
    assert sequences == sorted(set(sequences))
    texts = [e.chunk for e in streamed if isinstance(e, ChatChunk)]
    tools = [e.part_id for e in streamed if isinstance(e, MessagePart)]
    assert texts == [f"w{i} " for i in range(0, PARTS, 2)]
    assert tools == [part_id(i) for i in range(1, PARTS, 2)]

    middle = PARTS // 2 + 123
    resumed = await _events(backend, alice, chat, sequences[middle], PARTS - middle - 1)
    assert [e.sequence for e in resumed] == sequences[middle + 1 :]

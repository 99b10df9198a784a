"""Parts of replies: the pure rules, the one converter, opencode's shapes, offset streaming."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.adapters.opencode._parts import part_body, todo_list
from orchestrator.adapters.parts_json import (
    body_from_dict,
    body_from_row,
    body_to_dict,
    body_to_row,
)
from orchestrator.adapters.wire import converter
from orchestrator.application.streaming import PartTextStream
from orchestrator.domain.chat import ChatChunk, ChatMessage, MessageRole, MessageStatus
from orchestrator.domain.errors import Conflict, InvalidInput, TextGap
from orchestrator.domain.ids import ChatSessionId, ChunkId, MessageId
from orchestrator.domain.parts import (
    MAX_OPAQUE_BYTES,
    MAX_PART_FIELD,
    MAX_TODOS,
    MAX_TOOL_INPUT_BYTES,
    AgentPart,
    FilePart,
    MessagePart,
    OpaquePart,
    PartBody,
    PartId,
    PatchPart,
    ReasoningPart,
    StepFinishPart,
    StepStartPart,
    SubtaskPart,
    TextKind,
    TextPart,
    Todo,
    TodoListPart,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
    append_text,
    bound_body,
    clip_utf8,
    merge_events,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
REPLY = ChatMessage(
    MessageId("msg_1"),
    ChatSessionId("ses_1"),
    MessageRole.ASSISTANT,
    "",
    MessageStatus.STREAMING,
    NOW,
)
PART = PartId("prt_1")


def _deliver(deltas: list[tuple[int, str]]) -> tuple[MessagePart | None, int]:
    """Apply deltas in order as a backend would: load, call, save; the part and text added."""
    stored: MessagePart | None = None
    added = 0
    for offset, text in deltas:
        change = append_text(stored, REPLY, PART, TextKind.TEXT, offset, text, 1, NOW)
        if change.changed:
            stored = change.part
        added += len(change.added)
    return stored, added


@settings(max_examples=80, deadline=None)
@given(st.text(min_size=1, max_size=60), st.data())
def test_resent_and_overlapping_deltas_add_every_character_once(
    text: str, data: st.DataObject
) -> None:
    """However deltas are cut, re-sent or overlapped, the part holds the text exactly once."""
    cuts = sorted(
        data.draw(st.sets(st.integers(1, len(text) - 1), max_size=8)) if len(text) > 1 else []
    )
    bounds = [0, *cuts, len(text)]
    deltas: list[tuple[int, str]] = []
    for start, end in itertools.pairwise(bounds):
        deltas.append((start, text[start:end]))
        if data.draw(st.booleans()):  # a retry after a lost answer, from an earlier offset
            back = data.draw(st.integers(0, start))
            deltas.append((back, text[back:end]))
    part, added = _deliver(deltas)
    assert part is not None
    assert part.body == TextPart(text)
    assert added == len(text)


def test_a_gap_is_refused_and_names_the_stored_length() -> None:
    """A delta past the end raises TextGap with the length to resend from."""
    part, _ = _deliver([(0, "abc")])
    with pytest.raises(TextGap) as caught:
        append_text(part, REPLY, PART, TextKind.TEXT, 5, "x", 1, NOW)
    assert caught.value.stored_length == 3
    with pytest.raises(InvalidInput, match="negative"):
        append_text(part, REPLY, PART, TextKind.TEXT, -1, "x", 1, NOW)
    with pytest.raises(Conflict, match="not a reasoning part"):
        append_text(part, REPLY, PART, TextKind.REASONING, 3, "x", 1, NOW)


@given(st.text(max_size=40), st.integers(0, 60))
def test_clipping_keeps_whole_characters_within_the_bytes(text: str, limit: int) -> None:
    """A clipped text is a prefix whose UTF-8 fits the limit, cut at a character boundary."""
    clipped = clip_utf8(text, limit)
    assert text.startswith(clipped)
    assert len(clipped.encode()) <= limit
    assert len(clipped) == len(text) or len(text[: len(clipped) + 1].encode()) > limit


def test_bounds_keep_short_fields_and_drop_oversized_blobs() -> None:
    """Oversized tool input, data URLs and opaque JSON are dropped; long names are clipped."""
    long = "n" * (MAX_PART_FIELD + 5)
    huge_input = json.dumps({"x": "y" * MAX_TOOL_INPUT_BYTES})
    tool = bound_body(
        ToolPart(long, "c", ToolState(ToolStatus.ERROR, huge_input, long, None, 0, long))
    )
    assert isinstance(tool, ToolPart)
    assert (len(tool.tool), tool.state.input, len(tool.state.error or "")) == (
        MAX_PART_FIELD,
        "{}",
        MAX_PART_FIELD,
    )
    assert not tool.state.truncated
    assert bound_body(FilePart("image/png", "data:" + long)) == FilePart("image/png", "")
    assert bound_body(PatchPart("h", ("a",) * 2000)) == PatchPart("h", ("a",) * 1000)
    assert bound_body(SubtaskPart(long, "d", "p")) == SubtaskPart("n" * MAX_PART_FIELD, "d", "p")
    assert bound_body(AgentPart(long)) == AgentPart("n" * MAX_PART_FIELD)
    big = '"' + "x" * MAX_OPAQUE_BYTES + '"'
    assert bound_body(OpaquePart("retry", big, 0)) == OpaquePart("retry", "", len(big))
    assert bound_body(StepStartPart()) == StepStartPart()
    todos = TodoListPart(tuple(Todo("x" * (MAX_PART_FIELD + 1)) for _ in range(MAX_TODOS + 1)))
    bounded = bound_body(todos)
    assert isinstance(bounded, TodoListPart)
    assert len(bounded.todos) == MAX_TODOS
    assert bounded.todos[0].content == "x" * MAX_PART_FIELD


def test_opencode_todo_updates_are_read() -> None:
    """todo.updated's items become Todo records; items without text or not objects are skipped."""
    todos = [
        {"content": "a", "status": "completed", "priority": "high", "id": "1"},
        {"status": "pending"},
        "junk",
    ]
    assert todo_list(todos) == TodoListPart((Todo("a", "completed", "high"),))
    assert todo_list(None) == TodoListPart()


BODIES: list[PartBody] = [
    TextPart("hi"),
    ReasoningPart("hmm"),
    ToolPart("bash", "c1", ToolState(ToolStatus.RUNNING, '{"command":"ls"}', "ls", started_at=NOW)),
    FilePart("text/plain", "file:///a.txt", "a.txt"),
    PatchPart("abc", ("a.py", "b.py")),
    StepStartPart(),
    StepFinishPart("stop", 0.125, Tokens(1, 2, 3, 4, 5)),
    SubtaskPart("general", "look", "find it"),
    AgentPart("build"),
    TodoListPart((Todo("plan", "completed", "high"), Todo("<b>build</b>", "pending", "low"))),
    OpaquePart("snapshot", '{"type":"snapshot"}', 19),
]


@pytest.mark.parametrize("body", BODIES, ids=lambda b: type(b).__name__)
def test_the_converter_round_trips_every_part(body: PartBody) -> None:
    """Each part reads back as written, as a stored row and on the wire."""
    _, text, data = body_to_row(body)
    assert body_from_row(text, data) == body
    assert body_from_dict(json.loads(json.dumps(body_to_dict(body)))) == body
    part = MessagePart(PART, REPLY.message_id, REPLY.chat_session_id, 3, body, NOW)
    sent = json.loads(json.dumps(converter.unstructure(part)))
    assert (sent["type"], converter.structure(sent, MessagePart)) == (part.type, part)


def test_the_converter_keeps_unknown_types_and_refuses_wrong_shapes() -> None:
    """An unknown type becomes opaque with its JSON; a number where text belongs is refused."""
    assert body_from_dict({"type": "compaction", "auto": True}) == OpaquePart(
        "compaction", '{"type":"compaction","auto":true}', 33
    )
    with pytest.raises(InvalidInput, match=r"^This text part is not in a shape this version"):
        body_from_dict({"type": "text", "text": 5})
    with pytest.raises(InvalidInput, match="step-finish"):
        body_from_dict({"type": "step-finish", "tokens": {"input": 1.5}})
    with pytest.raises(InvalidInput, match="step-finish"):
        body_from_dict({"type": "step-finish", "cost": True})
    with pytest.raises(InvalidInput, match="tool"):
        body_from_dict({"type": "tool", "tool": "x", "call_id": "c", "state": {"status": 1}})


def test_opencode_tool_states_and_step_finishes_are_read() -> None:
    """opencode's tool states, timings and token counts become the domain's records."""
    completed = part_body(
        {
            "type": "tool",
            "tool": "write",
            "callID": "call_1",
            "state": {
                "status": "completed",
                "input": {"filePath": "/w/a.txt", "content": "x"},
                "output": "Wrote file",
                "title": "a.txt",
                "time": {"start": 1_700_000_000_000, "end": 1_700_000_000_500},
            },
        }
    )
    assert completed == ToolPart(
        "write",
        "call_1",
        ToolState(
            ToolStatus.COMPLETED,
            '{"content":"x","filePath":"/w/a.txt"}',
            "a.txt",
            "Wrote file",
            10,
            None,
            datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
            datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=UTC),
        ),
    )
    failed = part_body(
        {
            "type": "tool",
            "tool": "bash",
            "callID": "c",
            "state": {"status": "error", "error": "boom"},
        }
    )
    assert isinstance(failed, ToolPart)
    assert (failed.state.status, failed.state.error) == (ToolStatus.ERROR, "boom")
    finish = part_body(
        {
            "type": "step-finish",
            "reason": "stop",
            "cost": 0.5,
            "tokens": {"input": 10, "output": 4, "reasoning": 1, "cache": {"read": 2, "write": 3}},
        }
    )
    assert finish == StepFinishPart("stop", 0.5, Tokens(10, 4, 1, 2, 3))


def test_opencode_other_parts_are_read_or_kept_opaque() -> None:
    """Files, patches, subtasks and agents are read; unknown types and states stay opaque."""
    assert part_body({"type": "step-start"}) == StepStartPart()
    assert part_body(
        {"type": "file", "mime": "text/plain", "url": "file:///a", "filename": "a"}
    ) == FilePart("text/plain", "file:///a", "a")
    assert part_body({"type": "patch", "hash": "h", "files": ["a", 3]}) == PatchPart("h", ("a",))
    assert part_body({"type": "subtask", "agent": "general", "prompt": "p"}) == SubtaskPart(
        "general", "", "p"
    )
    assert part_body({"type": "agent", "name": "plan"}) == AgentPart("plan")
    odd = part_body({"type": "tool", "state": {"status": "paused"}})
    assert isinstance(odd, OpaquePart)
    assert odd.type == "tool"
    assert json.loads(odd.data)["state"] == {"status": "paused"}
    assert part_body({"type": "retry", "attempt": 2}) == OpaquePart(
        "retry", '{"type":"retry","attempt":2}', 28
    )


@pytest.mark.anyio
async def test_the_text_stream_writes_each_part_at_its_offsets() -> None:
    """Deltas of interleaved parts are written per part, each write saying where it goes."""
    written: list[tuple[str, TextKind, int, str]] = []

    async def write(part_id: str, kind: TextKind, offset: int, text: str) -> None:
        written.append((part_id, kind, offset, text))

    async with PartTextStream(write, window=60, max_chars=4) as stream:
        await stream.add("a", TextKind.TEXT, 0, "He")
        await stream.add("a", TextKind.TEXT, 2, "llo")  # fills the buffer: written at once
        await stream.add("r", TextKind.REASONING, 0, "hm")
        await stream.add("a", TextKind.TEXT, 5, "!")
        await anyio.sleep(0)
    assert written == [
        ("a", TextKind.TEXT, 0, "Hell"),
        ("a", TextKind.TEXT, 4, "o"),
        ("r", TextKind.REASONING, 0, "hm"),
        ("a", TextKind.TEXT, 5, "!"),
    ]
    assert stream.writes == 4


def test_merging_a_full_page_leaves_what_lies_beyond_it_for_the_next_read() -> None:
    """Events come in sequence order; a full page of one kind cuts the other at its end."""

    def chunk(sequence: int) -> ChatChunk:
        return ChatChunk(
            ChunkId(f"chk_{sequence}"), REPLY.message_id, REPLY.chat_session_id, "x", sequence, NOW
        )

    def part(sequence: int) -> MessagePart:
        return MessagePart(
            PartId(f"p{sequence}"),
            REPLY.message_id,
            REPLY.chat_session_id,
            1,
            StepStartPart(),
            NOW,
            sequence,
        )

    merged = merge_events([chunk(1), chunk(3)], [part(2), part(7)], page=2)
    assert [e.sequence for e in merged] == [1, 2, 3]
    assert [e.sequence for e in merge_events([chunk(1)], [part(2), part(7)], page=3)] == [1, 2, 7]

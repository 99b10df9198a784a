"""The backend contract for the typed parts of replies: stored whole, grown by idempotent deltas."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from orchestrator.domain.chat import ChatChunk
from orchestrator.domain.diffs import MAX_DIFF_BYTES, FileDiff, TurnDiffPart
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound, TextGap
from orchestrator.domain.ids import UserId
from orchestrator.domain.parts import (
    MAX_OPAQUE_BYTES,
    MAX_TODOS,
    MAX_TOOL_OUTPUT_BYTES,
    OpaquePart,
    ReasoningPart,
    StepFinishPart,
    StepStartPart,
    TextAppend,
    TextKind,
    TextPart,
    Todo,
    TodoListPart,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.ports import Backend
from tests.contract.conftest import Chat, MachineFactory, ask, claimed, first_value

pytestmark = pytest.mark.anyio

STARTED = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


async def _chunks(backend: Backend, alice: UserId, chat: Chat) -> list[ChatChunk]:
    """The session's chunks as its subscription first yields them."""
    return await first_value(backend.watch_chunks(alice, chat.session.chat_session_id, 0))


def _tool(status: ToolStatus, output: str | None = None) -> ToolPart:
    return ToolPart(
        "write",
        "call_1",
        ToolState(
            status,
            '{"filePath":"a.txt"}',
            "a.txt",
            output,
            len(output.encode()) if output else 0,
            started_at=STARTED,
        ),
    )


async def test_parts_are_created_replaced_and_listed_in_order(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A part is stored whole, replaced in place as its state moves, listed in creation order."""
    reply = await claimed(backend, alice, chat)
    await backend.save_part(chat.token, reply.message_id, "prt_a", _tool(ToolStatus.PENDING))
    finish = StepFinishPart("stop", 0.25, Tokens(input=10, output=5, reasoning=1))
    await backend.save_part(chat.token, reply.message_id, "prt_b", finish)
    done = await backend.save_part(
        chat.token, reply.message_id, "prt_a", _tool(ToolStatus.COMPLETED, "wrote it")
    )
    assert done.body == _tool(ToolStatus.COMPLETED, "wrote it")
    parts = await backend.list_parts(alice, chat.session.chat_session_id)
    assert [(p.part_id, p.type) for p in parts] == [("prt_a", "tool"), ("prt_b", "step-finish")]
    assert parts[0].body == done.body
    assert parts[1].body == finish
    assert parts[0].position < parts[1].position
    assert {p.message_id for p in parts} == {reply.message_id}


async def test_deltas_grow_a_text_part_and_stream_chunks(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Deltas in order append to the part, each once, and the new text is streamed as chunks."""
    reply = await claimed(backend, alice, chat)
    first = await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_t", 0, "Hello")
    )
    second = await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_t", 5, ", world")
    )
    assert (first.length, first.added, second.length, second.added) == (5, 5, 12, 7)
    assert first.chunk is not None
    assert second.chunk is not None
    assert second.chunk.sequence > first.chunk.sequence
    [part] = await backend.list_parts(alice, chat.session.chat_session_id, reply.message_id)
    assert part.body == TextPart("Hello, world")
    assert part.sequence == second.chunk.sequence  # one number for the part and its chunk
    assert (first.chunk.part_id, first.chunk.offset) == ("prt_t", 0)
    assert (second.chunk.part_id, second.chunk.offset) == ("prt_t", 5)
    assert "".join(c.chunk for c in await _chunks(backend, alice, chat)) == "Hello, world"


async def test_a_resent_or_overlapping_delta_adds_nothing_twice(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Re-sending a delta changes nothing; an overlapping one adds only its new tail."""
    reply = await claimed(backend, alice, chat)
    await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_t", 0, "Hello"))
    again = await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_t", 0, "Hello")
    )
    assert (again.length, again.added, again.chunk) == (5, 0, None)
    overlap = await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_t", 3, "lo!")
    )
    assert (overlap.length, overlap.added) == (6, 1)
    assert overlap.chunk is not None
    assert (overlap.chunk.part_id, overlap.chunk.offset) == ("prt_t", 5)
    [part] = await backend.list_parts(alice, chat.session.chat_session_id)
    assert part.body == TextPart("Hello!")
    assert [c.chunk for c in await _chunks(backend, alice, chat)] == ["Hello", "!"]


async def test_a_delta_leaving_a_gap_is_refused(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A delta starting past the stored end is a TextGap naming where to resend from."""
    reply = await claimed(backend, alice, chat)
    await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_t", 0, "Hi"))
    with pytest.raises(TextGap, match=r"send again from character 2\.$"):
        await backend.append_part_text(
            chat.token, reply.message_id, TextAppend("prt_t", 5, "later")
        )
    [part] = await backend.list_parts(alice, chat.session.chat_session_id)
    assert part.body == TextPart("Hi")


async def test_reasoning_deltas_are_not_streamed_as_reply_text(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A reasoning part grows like text but adds no chunk to the reply's stream."""
    reply = await claimed(backend, alice, chat)
    done = await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_r", 0, "thinking", TextKind.REASONING)
    )
    assert (done.added, done.chunk) == (8, None)
    [part] = await backend.list_parts(alice, chat.session.chat_session_id)
    assert part.body == ReasoningPart("thinking")
    with pytest.raises(Conflict, match=r"^That part is not a text part\.$"):
        await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_r", 8, "x"))


async def test_a_stale_whole_text_never_shortens_a_part(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A whole copy of a text part shorter than what deltas stored keeps the stored text."""
    reply = await claimed(backend, alice, chat)
    await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_t", 0, "Hello there")
    )
    kept = await backend.save_part(chat.token, reply.message_id, "prt_t", TextPart("Hello"))
    assert kept.body == TextPart("Hello there")
    longer = await backend.save_part(
        chat.token, reply.message_id, "prt_t", TextPart("Hello there!")
    )
    assert longer.body == TextPart("Hello there!")


async def test_oversized_tool_output_is_truncated_with_its_size(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Tool output over the bound is stored truncated, with the full size recorded."""
    reply = await claimed(backend, alice, chat)
    output = "é" * MAX_TOOL_OUTPUT_BYTES  # two bytes each: twice the bound
    await backend.save_part(
        chat.token, reply.message_id, "prt_a", _tool(ToolStatus.COMPLETED, output)
    )
    [part] = await backend.list_parts(alice, chat.session.chat_session_id)
    assert isinstance(part.body, ToolPart)
    state = part.body.state
    assert state.output == "é" * (MAX_TOOL_OUTPUT_BYTES // 2)
    assert state.output_size == 2 * MAX_TOOL_OUTPUT_BYTES
    assert state.truncated


async def test_a_part_of_an_unknown_type_is_kept(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An unknown part keeps its type and JSON; an oversized one keeps its type and size."""
    reply = await claimed(backend, alice, chat)
    small = OpaquePart("snapshot", '{"type":"snapshot","snapshot":"abc"}', 36)
    await backend.save_part(chat.token, reply.message_id, "prt_s", small)
    huge = '"' + "x" * MAX_OPAQUE_BYTES + '"'
    await backend.save_part(chat.token, reply.message_id, "prt_h", OpaquePart("retry", huge, 1))
    first, second = await backend.list_parts(alice, chat.session.chat_session_id)
    assert first.body == small
    assert second.body == OpaquePart("retry", "", len(huge))


async def test_a_todo_list_is_stored_bounded_and_replaced_whole(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The agent's todo list is a part: bounded to MAX_TODOS items, replaced whole, streamed."""
    reply = await claimed(backend, alice, chat)
    many = TodoListPart(tuple(Todo(f"step {i}", "pending", "low") for i in range(MAX_TODOS + 5)))
    await backend.save_part(chat.token, reply.message_id, "todo-list", many)
    later = TodoListPart((Todo("<b>ship</b>", "in_progress", "high"),))
    saved = await backend.save_part(chat.token, reply.message_id, "todo-list", later)
    [part] = await backend.list_parts(alice, chat.session.chat_session_id)
    assert (part.part_id, part.type, part.body) == ("todo-list", "todo-list", later)
    assert part.sequence == saved.sequence > 0


async def test_parts_of_another_machines_session_are_not_found(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Another machine cannot write parts of this session, and another user cannot list them."""
    reply = await claimed(backend, alice, chat)
    _, other = await new_machine("other", online=True)
    with pytest.raises(NotFound):
        await backend.save_part(other, reply.message_id, "prt_a", TextPart("x"))
    with pytest.raises(NotFound):
        await backend.append_part_text(other, reply.message_id, TextAppend("prt_a", 0, "x"))
    with pytest.raises(NotFound):
        await backend.list_parts(bob, chat.session.chat_session_id)
    assert await backend.list_parts(alice, chat.session.chat_session_id) == []


async def test_parts_need_a_streaming_reply_and_a_valid_id(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Parts of a user message or an ended reply, blank IDs and empty deltas are refused."""
    message = await ask(backend, alice, chat)
    with pytest.raises(Conflict):
        await backend.save_part(chat.token, message.message_id, "prt_a", TextPart("x"))
    reply = await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(InvalidInput):
        await backend.save_part(chat.token, reply.message_id, " ", TextPart("x"))
    with pytest.raises(InvalidInput):
        await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_t", 0, ""))
    await backend.complete_message(chat.token, reply.message_id, "done")
    with pytest.raises(Conflict, match=r"already ended"):
        await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_t", 0, "late"))
    assert await backend.list_parts(alice, chat.session.chat_session_id) == []


async def test_parts_of_two_replies_are_listed_per_message_and_in_session_order(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Listing by reply gives that reply's parts; the session listing keeps reply order."""
    first = await claimed(backend, alice, chat)
    await backend.append_part_text(chat.token, first.message_id, TextAppend("prt_1", 0, "one"))
    await backend.complete_message(chat.token, first.message_id, "one")
    second = await claimed(backend, alice, chat)
    await backend.append_part_text(chat.token, second.message_id, TextAppend("prt_2", 0, "two"))
    session = chat.session.chat_session_id
    assert [p.part_id for p in await backend.list_parts(alice, session)] == ["prt_1", "prt_2"]
    only = await backend.list_parts(alice, session, second.message_id)
    assert [p.body for p in only] == [TextPart("two")]


async def test_the_event_stream_resumes_by_the_sessions_sequence(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Chunks and non-text parts come in sequence order, a replaced part again, after any point."""
    reply = await claimed(backend, alice, chat)
    session = chat.session.chat_session_id
    pending = await backend.save_part(
        chat.token, reply.message_id, "prt_a", _tool(ToolStatus.PENDING)
    )
    text = await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_t", 0, "Hi")
    )
    done = await backend.save_part(
        chat.token, reply.message_id, "prt_a", _tool(ToolStatus.COMPLETED, "ok")
    )
    assert text.chunk is not None
    assert pending.sequence < text.chunk.sequence < done.sequence
    watched = backend.watch_events(alice, session, 0)
    try:
        first = await anext(watched)
        assert first == [text.chunk, done]
        more = await backend.append_part_text(
            chat.token, reply.message_id, TextAppend("prt_t", 2, "!")
        )
        step = await backend.save_part(chat.token, reply.message_id, "prt_s", StepStartPart())
        seen: list[object] = []
        with anyio.fail_after(10):
            while len(seen) < 2:
                seen.extend(await anext(watched))
        assert seen == [more.chunk, step]
    finally:
        await watched.aclose()  # type: ignore[attr-defined]
    later = backend.watch_events(alice, session, text.chunk.sequence)
    try:
        assert [e.sequence for e in await anext(later)] == [
            done.sequence,
            more.chunk.sequence,  # type: ignore[union-attr]
            step.sequence,
        ]
    finally:
        await later.aclose()  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        await anext(backend.watch_events(UserId("usr_nobody"), session, 0))


async def test_a_turn_diff_is_stored_bounded_on_every_backend(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A 5 MB patch is stored truncated with its size; a binary file loses its patch; names stay."""
    reply = await claimed(backend, alice, chat)
    huge = "+" + "<script>x</script>\x1b[31m" * (5 * 1024 * 1024 // 25) + "\n"
    diff = TurnDiffPart(
        "msg_1",
        (
            FileDiff("<img src=x onerror=alert(1)>.py", "modified", 1, 1, "-a\n+b\n", 6),
            FileDiff("huge.txt", "added", 200_000, 0, huge),
            FileDiff("logo.png", "added", 0, 0, "Binary files /dev/null and b/logo.png differ\n"),
        ),
    )
    await backend.save_part(chat.token, reply.message_id, "turn-diff", diff)
    [part] = await backend.list_parts(alice, chat.session.chat_session_id)
    body = part.body
    assert isinstance(body, TurnDiffPart)
    named, big, binary = body.files
    assert named == diff.files[0]
    assert big.patch_size == len(huge.encode())
    assert len(big.patch.encode()) == MAX_DIFF_BYTES - 6
    assert big.truncated
    assert (binary.file, binary.patch, binary.binary) == ("logo.png", "", True)

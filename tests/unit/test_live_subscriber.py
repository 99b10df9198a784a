"""A live reader's bounded queue."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from orchestrator.application.live import Subscriber
from orchestrator.domain.chat import MAX_CHUNK_LENGTH, ChatChunk
from orchestrator.domain.ids import ChatSessionId, ChunkId, MessageId
from orchestrator.domain.live import ReasoningChunk


def _chunk(sequence: int) -> ChatChunk:
    return ChatChunk(
        ChunkId(f"c{sequence}"),
        MessageId("m"),
        ChatSessionId("s"),
        "x",
        sequence,
        datetime.now(UTC),
    )


def _delta(
    sequence: int, offset: int, text: str, part: str = "p", kind: type[ChatChunk] = ChatChunk
) -> ChatChunk:
    return kind(
        ChunkId(f"c{sequence}"),
        MessageId("m"),
        ChatSessionId("s"),
        text,
        sequence,
        datetime.now(UTC),
        part_id=part,
        offset=offset,
    )


def test_a_burst_of_one_parts_text_waits_as_one_chunk_under_the_last_sequence() -> None:
    """Deltas that continue the waiting one join it: one frame, resumable after the last."""
    subscriber = Subscriber(limit=2)
    for sequence in range(1, 101):
        subscriber.put(_delta(sequence, sequence - 1, "x"))
    assert not subscriber.overflowed
    [joined] = subscriber.take()
    assert isinstance(joined, ChatChunk)
    assert (joined.chunk, joined.offset, joined.part_id) == ("x" * 100, 0, "p")
    assert (joined.sequence, joined.chunk_id) == (100, "c100")


def test_only_the_very_next_text_of_the_same_part_and_kind_joins() -> None:
    """Another part, a gap, another kind, or a chunk past the size bound stays apart."""
    subscriber = Subscriber()
    subscriber.put(_delta(1, 0, "ab"))
    subscriber.put(_delta(2, 0, "cd", part="q"))  # another part
    subscriber.put(_delta(3, 5, "ef", part="q"))  # a gap after "cd"
    subscriber.put(_delta(4, 7, "gh", part="q", kind=ReasoningChunk))  # another kind
    subscriber.put(_delta(5, 9, "i" * MAX_CHUNK_LENGTH, part="q", kind=ReasoningChunk))
    subscriber.put(_chunk(6))  # no part: never joined
    subscriber.put(_chunk(7))
    assert [c.sequence for c in subscriber.take()] == [1, 2, 3, 4, 5, 6, 7]
    subscriber.put(_delta(8, 2, "cd"))  # after a take, nothing waits to join
    assert [c.sequence for c in subscriber.take()] == [8]


def test_a_reader_too_far_behind_is_marked_and_starts_over_empty() -> None:
    """Past its limit a queue drops what it holds and says so; reset starts it again."""
    subscriber = Subscriber(limit=3)
    for sequence in (1, 2, 3):
        subscriber.put(_chunk(sequence))
    assert not subscriber.overflowed
    assert [c.sequence for c in subscriber.take()] == [1, 2, 3]
    for sequence in range(4, 9):
        subscriber.put(_chunk(sequence))
    assert subscriber.overflowed
    assert subscriber.take() == []
    subscriber.reset()
    subscriber.put(_chunk(9))
    assert not subscriber.overflowed
    assert [c.sequence for c in subscriber.take()] == [9]


@pytest.mark.anyio
async def test_a_waiting_reader_wakes_even_after_another_task_took_from_its_queue() -> None:
    """A take() by another task (the messages pump) never leaves the tail waiting forever."""
    subscriber = Subscriber()
    woke = anyio.Event()

    async def tail() -> None:
        await subscriber.wait()
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(tail)
        await anyio.sleep(0.01)
        subscriber.take()  # what a messages event does while the tail waits
        subscriber.put(_chunk(1))
        with anyio.fail_after(5):
            await woke.wait()

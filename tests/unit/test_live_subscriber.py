"""A live reader's bounded queue."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from orchestrator.application.live import Subscriber
from orchestrator.domain.chat import ChatChunk
from orchestrator.domain.ids import ChatSessionId, ChunkId, MessageId


def _chunk(sequence: int) -> ChatChunk:
    return ChatChunk(
        ChunkId(f"c{sequence}"),
        MessageId("m"),
        ChatSessionId("s"),
        "x",
        sequence,
        datetime.now(UTC),
    )


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

"""A session's agent events waiting for their reader: order kept, waiting text deltas merged."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.adapters.opencode._events import EventQueue
from orchestrator.domain.agent import AgentEvent, AgentSessionId, TextDelta, TurnFinished
from orchestrator.domain.chat import MAX_CHUNK_LENGTH
from orchestrator.domain.parts import TextKind

pytestmark = pytest.mark.anyio

SESSION = AgentSessionId("ses_1")


def delta(text: str, offset: int, part: str = "prt_1", kind: TextKind = TextKind.TEXT) -> TextDelta:
    return TextDelta(SESSION, "msg_1", part, text, offset, kind)


async def drained(queue: EventQueue) -> list[AgentEvent]:
    queue.close()
    return [event async for event in queue]


async def test_waiting_deltas_that_continue_each_other_are_read_as_one() -> None:
    """A burst of one part's deltas reaches the reader as one delta at the first offset."""
    queue = EventQueue()
    for offset, text in ((0, "Hel"), (3, "lo, "), (7, "world")):
        queue.put(delta(text, offset))
    assert await drained(queue) == [delta("Hello, world", 0)]


async def test_other_parts_kinds_gaps_and_other_events_stay_apart_in_order() -> None:
    """Only the very next offset of the same part and kind joins; everything keeps its order."""
    queue = EventQueue()
    events: list[AgentEvent] = [
        delta("a", 0),
        delta("b", 0, part="prt_2"),
        delta("c", 1),
        delta("x", 5, part="prt_1"),
        delta("r", 6, kind=TextKind.REASONING),
        TurnFinished(SESSION),
        delta("y", 6),
    ]
    for event in events:
        queue.put(event)
    assert await drained(queue) == events


async def test_a_delta_already_read_is_not_merged_into() -> None:
    """The reader sees each character once: a delta after one it took is its own event."""
    queue = EventQueue()
    queue.put(delta("Hi", 0))
    assert await anext(queue) == delta("Hi", 0)
    queue.put(delta("!", 2))
    assert await drained(queue) == [delta("!", 2)]


async def test_the_delta_still_joining_comes_whole_after_the_events_before_it() -> None:
    """Taking the earlier events leaves the last delta joining; it is then read whole, once."""
    queue = EventQueue()
    queue.put(delta("a", 0, part="prt_2"))
    queue.put(TurnFinished(SESSION))
    queue.put(delta("Hel", 0))
    queue.put(delta("lo", 3))
    assert await anext(queue) == delta("a", 0, part="prt_2")
    queue.put(delta(", ", 5))
    assert await anext(queue) == TurnFinished(SESSION)
    queue.put(delta("you", 7))
    assert await drained(queue) == [delta("Hello, you", 0)]


async def test_merging_stops_at_the_chunk_limit() -> None:
    """A merged delta never passes the longest chunk a reply takes."""
    queue = EventQueue()
    queue.put(delta("a" * (MAX_CHUNK_LENGTH - 1), 0))
    queue.put(delta("bb", MAX_CHUNK_LENGTH - 1))
    assert [len(e.text) for e in await drained(queue) if isinstance(e, TextDelta)] == [
        MAX_CHUNK_LENGTH - 1,
        2,
    ]


async def test_the_reader_waits_for_events_and_ends_when_closed() -> None:
    """A waiting reader wakes on the next event, and ends after what was queued before close."""
    queue = EventQueue()
    seen: list[AgentEvent] = []

    async def read() -> None:
        async for event in queue:
            seen.append(event)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        queue.put(delta("one", 0))
        await anyio.wait_all_tasks_blocked()
        assert seen == [delta("one", 0)]
        queue.put(TurnFinished(SESSION))
        queue.close()
        queue.put(delta("late", 3))
    assert seen == [delta("one", 0), TurnFinished(SESSION)]

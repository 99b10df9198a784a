"""Deltas stored as one chunk per run: resuming after any delta gives exactly what followed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.ids import ChatSessionId, MessageId
from orchestrator.domain.live import (
    LivePart,
    LiveText,
    SequencedEvent,
    TextRun,
    marks_from,
    text_after,
    text_runs,
)
from orchestrator.domain.parts import PartId, StepStartPart, TextKind

SESSION, REPLY = ChatSessionId("chs_1"), MessageId("msg_1")


def _deltas(pieces: list[str], first: int = 1) -> list[SequencedEvent]:
    events, offset = [], 0
    for index, piece in enumerate(pieces):
        event = LiveText(SESSION, REPLY, PartId("prt_1"), TextKind.TEXT, offset, piece)
        events.append(SequencedEvent(event, first + index))
        offset += len(piece)
    return events


def _one_run(pieces: list[str]) -> tuple[TextRun, LiveText]:
    """The single run the deltas of *pieces* make, and its joined text event."""
    [run] = text_runs(_deltas(pieces))
    assert isinstance(run, TextRun)
    assert isinstance(run.item.event, LiveText)
    return run, run.item.event


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=12), st.data())
def test_resuming_after_any_delta_of_a_run_gives_the_text_that_followed(
    pieces: list[str], data: st.DataObject
) -> None:
    """A run joins its deltas; text_after(k) is the deltas numbered above k, joined."""
    run, joined = _one_run(pieces)
    assert joined.text == "".join(pieces)
    assert run.item.sequence == len(pieces)
    after = data.draw(st.integers(0, len(pieces)))
    text, offset = text_after(joined.text, 0, run.marks, after)
    assert text == "".join(pieces[after:])
    assert offset == len("".join(pieces[:after]))


@given(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=12), st.data())
def test_a_run_partly_stored_keeps_the_marks_of_what_is_new(
    pieces: list[str], data: st.DataObject
) -> None:
    """Of a run whose first characters were stored, resuming reads only the new text."""
    run, joined = _one_run(pieces)
    whole = joined.text
    start = data.draw(st.integers(0, len(whole) - 1))
    marks = marks_from(run.marks, start, len(whole))
    after = data.draw(st.integers(0, len(pieces)))
    text, _ = text_after(whole[start:], start, marks, after)
    assert text == whole[max(start, len("".join(pieces[:after]))) :]


def test_runs_break_at_other_parts_gaps_and_whole_parts() -> None:
    """A part stored whole, another part or a gap in offsets starts a new run."""
    deltas = _deltas(["ab", "cd"])
    other = LiveText(SESSION, REPLY, PartId("prt_2"), TextKind.TEXT, 0, "x")
    gap = LiveText(SESSION, REPLY, PartId("prt_1"), TextKind.TEXT, 9, "y")
    whole = LivePart(SESSION, REPLY, PartId("prt_3"), StepStartPart())
    runs = text_runs(
        [
            *deltas,
            SequencedEvent(other, 3),
            SequencedEvent(gap, 4),
            SequencedEvent(whole, 5),
            *_deltas(["z"], 6),
        ]
    )
    assert [r.item.sequence if isinstance(r, TextRun) else r.sequence for r in runs] == [
        2, 3, 4, 5, 6,
    ]  # fmt: skip

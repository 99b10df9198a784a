"""Live events: what a machine sends the server as an agent turn streams, before it is stored.

The live path and the durable one are apart: the server shows each event to
the session's readers at once and stores events in batches later. The server
numbers each event with the session's sequence when it first accepts it, so
the number a browser saw live is the number the event is stored under; a
re-sent event that changes nothing takes no number. Writes are keyed by part
and character offset (see :mod:`orchestrator.domain.parts`), so storing a
re-sent event twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from orchestrator.domain.chat import ChatChunk, ChatMessage
from orchestrator.domain.ids import ChatSessionId, MessageId
from orchestrator.domain.parts import MessagePart, PartBody, PartId, TextKind

#: How far a restarted server's numbering starts past the stored sequence, so a number a
#: browser saw from the previous process (never stored) is never reused for other text.
RESTART_JUMP = 1 << 20


@attrs.frozen
class LiveText:
    """Text appended to a text or reasoning part at a character offset."""

    session_id: ChatSessionId
    message_id: MessageId
    part_id: PartId
    kind: TextKind
    offset: int
    text: str


@attrs.frozen
class LivePart:
    """A part stored whole: created, or replaced as it moves (a tool call's state)."""

    session_id: ChatSessionId
    message_id: MessageId
    part_id: PartId
    body: PartBody


LiveEvent = LiveText | LivePart


@attrs.frozen
class ReasoningChunk(ChatChunk):
    """Text appended live to a reasoning part at ``offset`` (the part itself holds it stored)."""


@attrs.frozen
class SequencedEvent:
    """An accepted event with the sequence the server gave it (and a text chunk's ID)."""

    event: LiveEvent
    sequence: int

    @property
    def chunk_id(self) -> str:
        """The ID of the chunk a text delta is shown and stored as."""
        return f"{self.event.message_id}.{self.sequence}"


@attrs.frozen
class ReplyState:
    """A streaming reply as stored: where a live relay resumes it from."""

    message: ChatMessage
    parts: tuple[MessagePart, ...]
    #: Position the next new part of the session takes.
    next_position: int


#: Where each delta of a stored run of text starts: (sequence, character offset in the part).
Marks = tuple[tuple[int, int], ...]


@attrs.frozen
class TextRun:
    """Deltas of one part stored as one chunk: the whole text under the last delta's number.

    ``marks`` keeps where each delta started, so a reader resuming after one of them
    gets exactly the text that followed it (:func:`text_after`), as if each delta were
    stored alone.
    """

    item: SequencedEvent
    marks: Marks


def text_runs(events: Sequence[SequencedEvent]) -> list[SequencedEvent | TextRun]:
    """``events`` with each run of contiguous text deltas of one part joined into one.

    Linear in the batch: a run's texts are joined once, when it ends.
    """
    joined: list[SequencedEvent | TextRun] = []
    run: list[SequencedEvent] = []

    def close() -> None:
        if not run:
            return
        item = run[0]
        if len(run) > 1:
            first = item.event
            assert isinstance(first, LiveText)
            text = "".join(_text_of(i) for i in run)
            item = SequencedEvent(attrs.evolve(first, text=text), run[-1].sequence)
        joined.append(TextRun(item, tuple((i.sequence, _offset_of(i)) for i in run)))
        run.clear()

    for item in events:
        event = item.event
        if not isinstance(event, LiveText):
            close()
            joined.append(item)
            continue
        last = run[-1].event if run else None
        if not (
            isinstance(last, LiveText)
            and (last.message_id, last.part_id, last.kind)
            == (event.message_id, event.part_id, event.kind)
            and last.offset + len(last.text) == event.offset
        ):
            close()
        run.append(item)
    close()
    return joined


def _text_of(item: SequencedEvent) -> str:
    assert isinstance(item.event, LiveText)
    return item.event.text


def _offset_of(item: SequencedEvent) -> int:
    assert isinstance(item.event, LiveText)
    return item.event.offset


def marks_from(marks: Marks, start: int, end: int) -> Marks:
    """The marks of the deltas that end after ``start`` (text before it was stored already)."""
    kept: list[tuple[int, int]] = []
    for index, (sequence, offset) in enumerate(marks):
        delta_end = marks[index + 1][1] if index + 1 < len(marks) else end
        if delta_end > start:
            kept.append((sequence, max(offset, start)))
    return tuple(kept)


def text_after(text: str, offset: int, marks: Marks, after: int) -> tuple[str, int]:
    """The part of a stored run a reader that has seen up to sequence ``after`` has not seen.

    Returns the text and the offset it starts at (the whole run when ``after`` is before it).
    """
    for sequence, start in marks:
        if sequence > after:
            return text[start - offset :], start
    return "", offset + len(text)


@attrs.define
class GrowingText:
    """A reply's text as it streams: each append O(its own length), joined only when read.

    Copying the whole text on every delta makes a long reply quadratic (a 1 MB
    reply in 50-character deltas copies 10 GB); this keeps the pieces and joins
    them once, when the text is read.
    """

    _pieces: list[str] = attrs.field(factory=list)
    #: Characters held.
    length: int = 0

    @classmethod
    def of(cls, text: str) -> GrowingText:
        """Holding ``text``."""
        return cls([text] if text else [], len(text))

    def append(self, text: str) -> None:
        """Add ``text`` at the end."""
        if text:
            self._pieces.append(text)
            self.length += len(text)

    @property
    def text(self) -> str:
        """The whole text (joined once; reading it again without appends copies nothing)."""
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    def place(self, offset: int, text: str) -> None:
        """Put ``text`` at ``offset``: the text becomes what was before ``offset`` plus ``text``.

        Text that agrees with what is held there already changes nothing (a re-sent
        delta never shortens it); an offset past the end appends.
        """
        if offset >= self.length:
            self.append(text)
            return
        known = self.text
        if known.startswith(text, offset):
            return
        merged = known[:offset] + text
        self._pieces[:] = [merged] if merged else []
        self.length = len(merged)

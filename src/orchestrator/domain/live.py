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

from orchestrator.domain.chat import ChatMessage
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
    """``events`` with each run of contiguous text deltas of one part joined into one."""
    joined: list[SequencedEvent | TextRun] = []
    for item in events:
        event = item.event
        last = joined[-1] if joined else None
        if (
            isinstance(event, LiveText)
            and isinstance(last, TextRun)
            and isinstance(last.item.event, LiveText)
            and (last.item.event.message_id, last.item.event.part_id, last.item.event.kind)
            == (event.message_id, event.part_id, event.kind)
            and last.item.event.offset + len(last.item.event.text) == event.offset
        ):
            text = attrs.evolve(last.item.event, text=last.item.event.text + event.text)
            joined[-1] = TextRun(
                SequencedEvent(text, item.sequence), (*last.marks, (item.sequence, event.offset))
            )
        elif isinstance(event, LiveText):
            joined.append(TextRun(item, ((item.sequence, event.offset),)))
        else:
            joined.append(item)
    return joined


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

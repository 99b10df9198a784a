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

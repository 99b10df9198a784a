"""A session's agent events waiting for their reader, text deltas merged while they wait."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator

import anyio
import attrs

from orchestrator.domain.agent import AgentEvent, TextDelta
from orchestrator.domain.chat import MAX_CHUNK_LENGTH


class EventQueue(AsyncIterator[AgentEvent]):
    """Events in order for one reader (resumable after ``break``) until closed.

    A text delta that continues the one waiting last (same part, the very next offset)
    joins it: when opencode sends a burst, the reader takes a session's text of the
    burst as one delta instead of one per token, and nothing waits to be merged.
    """

    def __init__(self) -> None:
        self._waiting: deque[AgentEvent] = deque()
        #: The texts joined into the last waiting delta, made one string only when it is
        #: read or closed off: a burst is not copied again for every delta that joins it.
        self._pieces: list[str] = []
        self._joined_length = 0
        self._arrived = anyio.Event()
        self._closed = False

    def put(self, event: AgentEvent) -> None:
        """Queue ``event`` (ignored once closed)."""
        if self._closed:
            return
        last = self._waiting[-1] if self._waiting else None
        if (
            isinstance(event, TextDelta)
            and isinstance(last, TextDelta)
            and last.part_id == event.part_id
            and last.message_id == event.message_id
            and last.kind is event.kind
            and last.offset + self._joined_length == event.offset
            and self._joined_length + len(event.text) <= MAX_CHUNK_LENGTH
        ):
            self._pieces.append(event.text)
            self._joined_length += len(event.text)
        else:
            self._seal()
            self._waiting.append(event)
            if isinstance(event, TextDelta):
                self._pieces = [event.text]
                self._joined_length = len(event.text)
        self._arrived.set()

    def _seal(self) -> None:
        """Make the last waiting delta whole: nothing joins it any more."""
        last = self._waiting[-1] if self._pieces else None
        if isinstance(last, TextDelta) and len(self._pieces) > 1:
            self._waiting[-1] = attrs.evolve(last, text="".join(self._pieces))
        self._pieces = []
        self._joined_length = 0

    def close(self) -> None:
        """No more events: the reader ends after those already queued."""
        self._closed = True
        self._arrived.set()

    def __aiter__(self) -> EventQueue:
        return self

    async def __anext__(self) -> AgentEvent:
        while not self._waiting:
            if self._closed:
                raise StopAsyncIteration
            self._arrived = anyio.Event()
            await self._arrived.wait()
        if len(self._waiting) == 1:
            self._seal()  # the reader takes the delta still being joined
        return self._waiting.popleft()

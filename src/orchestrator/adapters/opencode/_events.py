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
            and (last.message_id, last.part_id, last.kind)
            == (event.message_id, event.part_id, event.kind)
            and last.offset + len(last.text) == event.offset
            and len(last.text) + len(event.text) <= MAX_CHUNK_LENGTH
        ):
            self._waiting[-1] = attrs.evolve(last, text=last.text + event.text)
        else:
            self._waiting.append(event)
        self._arrived.set()

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
        return self._waiting.popleft()

"""``GET /api/sessions/{session_id}/stream``: one chat session, live, as Server-Sent Events.

Events (``data`` is JSON):

* ``messages`` -- ``{"messages": [ChatMessage, ...]}``, the whole list, at once
  and whenever a message is added or changes (status, completion, abort);
* ``chunk`` -- one ``ChatChunk`` per event, in sequence order, with
  ``id: <sequence>``;
* ``part`` -- a part of a reply other than text (a tool call, a step finish …),
  whole, each time it is created or replaced, with ``id: <sequence>``: chunks
  and parts share the session's sequence and come in its order;
* ``error`` -- ``{"error": ..., "type": ...}`` once, then the stream ends.

Resuming: the stream sends the chunks whose sequence is above the browser's
``Last-Event-ID`` header (what ``EventSource`` sends when it reconnects), else
above ``?after=N``, so a reconnecting browser gets exactly what it missed: no
gap, no duplicate. With neither, it starts from the messages as they are now
plus the chunks of replies still being written, and every part; chunks of
finished replies are left out because their message already holds the whole text.

Ordering: every chunk of a reply is sent before the ``messages`` event that
first shows that reply finished, so a reader may stop at that event.
"""

from __future__ import annotations

from typing import Final

import anyio
from aiohttp import web

from orchestrator.adapters.remote.wire import converter, error_body
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.errors import InvalidInput, OrchestratorError
from orchestrator.domain.ids import ChatSessionId, MessageId, UserId
from orchestrator.domain.parts import MessagePart, StreamEvent
from orchestrator.domain.ports import ServerBackend
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import path_id
from orchestrator.entrypoints.web.state import BACKEND
from orchestrator.entrypoints.web.streams import EventStream, closing, tracked

BAD_RESUME_POINT: Final = (
    "Last-Event-ID (or ?after=) must be a chunk sequence: a whole number of at least 0."
)
#: Largest sequence accepted; far above any real session, small enough for every backend.
MAX_SEQUENCE: Final = 2**53


def resume_point(request: web.Request) -> int | None:
    """The sequence the browser saw last: ``Last-Event-ID``, else ``?after=``, else None."""
    raw = request.headers.get("Last-Event-ID", "").strip() or request.query.get("after", "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_SEQUENCE:
        raise InvalidInput(BAD_RESUME_POINT)
    return int(raw)


class _SessionRelay:
    """Relays one session: each chunk and part once, in order; a reply ends after its chunks."""

    def __init__(
        self,
        stream: EventStream,
        backend: ServerBackend,
        user: UserId,
        session_id: ChatSessionId,
        after: int,
    ) -> None:
        self.stream = stream
        self.backend = backend
        self.user = user
        self.session_id = session_id
        self.last = after
        #: Replies already finished when a fresh stream started (their content is whole).
        self.skip: frozenset[MessageId] = frozenset()
        self._lock = anyio.Lock()

    async def send_events(self, batch: list[StreamEvent]) -> None:
        async with self._lock:  # filter and write as one step, so batches never reorder
            events: list[tuple[str, object, int | None]] = []
            for event in batch:
                if event.sequence <= self.last:
                    continue  # never a duplicate, whatever the backend resends
                self.last = event.sequence
                if isinstance(event, MessagePart):
                    events.append(("part", converter.unstructure(event), event.sequence))
                elif event.message_id not in self.skip:
                    events.append(("chunk", converter.unstructure(event), event.sequence))
            if events:
                await self.stream.send_many(events)

    async def send_messages(self, messages: list[ChatMessage], catch_up: bool = True) -> None:
        if catch_up:
            # Chunks stored by now include every chunk of a reply this list shows finished
            # (a reply ends after its last chunk), so a reader never sees it end early.
            current = self.backend.watch_events(self.user, self.session_id, self.last)
            async with closing(current) as now:
                await self.send_events(await anext(aiter(now)))
        await self.stream.send("messages", {"messages": converter.unstructure(messages)})

    async def run(self, fresh: bool) -> None:
        async with closing(self.backend.watch_messages(self.user, self.session_id)) as messages:
            try:
                first = await anext(aiter(messages))
            except OrchestratorError as exc:
                await self.stream.send("error", error_body(exc))
                return
            if fresh:
                # The list comes first so the browser can place the chunks that follow;
                # replies it shows finished are whole, so their chunks are not needed.
                self.skip = frozenset(m.message_id for m in first if m.completed)
            await self.send_messages(first, catch_up=not fresh)
            async with anyio.create_task_group() as tg:
                done = tg.cancel_scope
                tg.start_soon(self.stream.keepalive)
                tg.start_soon(self.stream.pump, messages, self.send_messages, done)
                events = self.backend.watch_events(self.user, self.session_id, self.last)
                tg.start_soon(self.stream.pump, events, self.send_events, done)


async def session_stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/sessions/{session_id}/stream``: messages and reply chunks, live and resumable."""
    user = require_user(request)
    session_id = ChatSessionId(path_id(request, "session_id", "chat session"))
    after = resume_point(request)
    backend = request.app[BACKEND]
    await backend.get_session(user, session_id)  # 404 before the stream starts
    stream = await EventStream.open(request)
    with tracked(request):
        try:
            relay = _SessionRelay(stream, backend, user, session_id, after or 0)
            await relay.run(fresh=after is None)
        except* ConnectionResetError:
            pass  # the browser went away; it reconnects with Last-Event-ID
    return stream.response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the chat stream."""
    router.add_get("/api/sessions/{session_id}/stream", session_stream)

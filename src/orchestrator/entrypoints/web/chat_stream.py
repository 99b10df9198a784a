"""``GET /api/sessions/{session_id}/stream``: one chat session, live, as Server-Sent Events.

Events (``data`` is JSON):

* ``messages`` -- ``{"messages": [ChatMessage, ...]}``, the whole list, at once
  and whenever a message is added or changes (status, completion, abort);
* ``chunk`` -- one ``ChatChunk`` per event, in sequence order, with
  ``id: <sequence>``;
* ``error`` -- ``{"error": ..., "type": ...}`` once, then the stream ends.

Resuming: the stream sends the chunks whose sequence is above the browser's
``Last-Event-ID`` header (what ``EventSource`` sends when it reconnects), else
above ``?after=N``, so a reconnecting browser gets exactly what it missed: no
gap, no duplicate. With neither, it starts from the messages as they are now
plus the chunks of replies still being written; chunks of finished replies are
left out because their message already holds the whole text.
"""

from __future__ import annotations

from typing import Final

import anyio
from aiohttp import web

from orchestrator.adapters.remote.wire import converter, error_body
from orchestrator.domain.chat import ChatChunk, ChatMessage
from orchestrator.domain.errors import InvalidInput, OrchestratorError
from orchestrator.domain.ids import ChatSessionId, MessageId, UserId
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


class _ChunkRelay:
    """Sends each chunk once, in order, with its sequence as the event ID."""

    def __init__(self, stream: EventStream, after: int, skip: frozenset[MessageId]) -> None:
        self.stream = stream
        self.last = after
        #: Replies already finished when a fresh stream started; only the first batch has them.
        self.skip = skip

    async def send(self, batch: list[ChatChunk]) -> None:
        events: list[tuple[str, object, int | None]] = []
        for chunk in batch:
            if chunk.sequence <= self.last:
                continue  # never a duplicate, whatever the backend resends
            self.last = chunk.sequence
            if chunk.message_id not in self.skip:
                events.append(("chunk", converter.unstructure(chunk), chunk.sequence))
        self.skip = frozenset()
        if events:
            await self.stream.send_many(events)


async def _relay(
    stream: EventStream,
    backend: ServerBackend,
    user: UserId,
    session_id: ChatSessionId,
    after: int | None,
) -> None:
    async def send_messages(value: list[ChatMessage]) -> None:
        await stream.send("messages", {"messages": converter.unstructure(value)})

    async with closing(backend.watch_messages(user, session_id)) as messages:
        try:
            first = await anext(aiter(messages))
        except OrchestratorError as exc:
            await stream.send("error", error_body(exc))
            return
        # Sent before any chunk, so a fresh stream knows which replies are whole already.
        await send_messages(first)
        finished = frozenset(m.message_id for m in first if m.completed)
        relay = _ChunkRelay(stream, after or 0, finished if after is None else frozenset())
        async with anyio.create_task_group() as tg:
            done = tg.cancel_scope
            tg.start_soon(stream.keepalive)
            tg.start_soon(stream.pump, messages, send_messages, done)
            chunks = backend.watch_chunks(user, session_id, after or 0)
            tg.start_soon(stream.pump, chunks, relay.send, done)


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
            await _relay(stream, backend, user, session_id, after)
        except* ConnectionResetError:
            pass  # the browser went away; it reconnects with Last-Event-ID
    return stream.response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the chat stream."""
    router.add_get("/api/sessions/{session_id}/stream", session_stream)

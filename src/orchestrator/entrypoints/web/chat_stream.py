"""``GET /api/sessions/{session_id}/stream``: one chat session, live, as Server-Sent Events.

Events (``data`` is JSON):

* ``messages`` -- ``{"messages": [ChatMessage, ...]}``, the session's newest page
  of messages (oldest first), at once and whenever a message is added or
  changes (status, completion, abort); a long history is never sent whole. The
  first such event also carries ``earlier``: the cursor of the page before it
  for ``GET /api/sessions/{id}/messages?cursor=…``, or null if it is the start;
* ``chunk`` -- one ``ChatChunk`` per event, in sequence order, with
  ``id: <sequence>``;
* ``reasoning`` -- text appended live to a reasoning part (shown whole by a ``part``
  event first): a ``ChatChunk`` whose ``chunk`` goes at ``offset`` of part ``part_id``,
  with ``id: <sequence>``; only live readers get these, a resumed stream gets the part;
* ``part`` -- a part of a reply other than text (a tool call, a step finish …),
  whole, each time it is created or replaced, with ``id: <sequence>``: chunks
  and parts share the session's sequence and come in its order;
* ``requests`` -- ``{"permissions": [...], "questions": [...]}``: every permission
  request and question of the session with its status and answer, at once and
  whenever one is asked or answered (so the page never polls for them);
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

from collections.abc import AsyncIterator, Iterable
from typing import Any, Final

import anyio
import anyio.abc
from aiohttp import web

from orchestrator.adapters.wire import converter, error_body
from orchestrator.application.live import LiveRelay, SessionLive
from orchestrator.domain.chat import ChatMessage, PermissionRequest
from orchestrator.domain.errors import InvalidInput, OrchestratorError
from orchestrator.domain.ids import ChatSessionId, MessageId, UserId
from orchestrator.domain.live import ReasoningChunk
from orchestrator.domain.paging import MESSAGES, encode_cursor
from orchestrator.domain.parts import EVENT_PAGE, MessagePart, StreamEvent
from orchestrator.domain.ports import ServerBackend
from orchestrator.domain.questions import QuestionRequest
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import path_id
from orchestrator.entrypoints.web.state import BACKEND, LIVE
from orchestrator.entrypoints.web.streams import (
    EventStream,
    FrameCache,
    closing,
    sse_frame,
    tracked,
)

BAD_RESUME_POINT: Final = (
    "Last-Event-ID (or ?after=) must be a chunk sequence: a whole number of at least 0."
)
#: Largest sequence accepted; far above any real session, small enough for every backend.
MAX_SEQUENCE: Final = 2**53
#: Live events go to every reader of their session as the same objects: encoded once.
LIVE_FRAMES: Final = FrameCache()


def event_frame(event: object) -> str:
    """The SSE frame of a chunk or a part."""
    assert isinstance(event, StreamEvent)
    if isinstance(event, MessagePart):
        name = "part"
    else:
        name = "reasoning" if isinstance(event, ReasoningChunk) else "chunk"
    return sse_frame(name, converter.unstructure(event), event.sequence)


def resume_point(request: web.Request) -> int | None:
    """The sequence the browser saw last: ``Last-Event-ID``, else ``?after=``, else None."""
    raw = request.headers.get("Last-Event-ID", "").strip() or request.query.get("after", "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > MAX_SEQUENCE:
        raise InvalidInput(BAD_RESUME_POINT)
    return int(raw)


async def earlier_cursor(
    backend: ServerBackend, user: UserId, session_id: ChatSessionId, shown: list[ChatMessage]
) -> str | None:
    """The cursor of the messages before ``shown`` (oldest first), or None if there are none."""
    if not shown:
        return None
    cursor = encode_cursor(MESSAGES, session_id, shown[0].message_id)
    older = await backend.list_messages_page(user, session_id, cursor, 1)
    return cursor if older.items else None


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
        self._lock = anyio.Lock(fast_acquire=True)  # per event: no loop pass when free
        self.requests_sent: object = None

    async def send_events(self, batch: list[StreamEvent]) -> None:
        async with self._lock:  # filter and write as one step, so batches never reorder
            await self._send_locked(batch)

    def _frame(self, event: StreamEvent) -> str:
        return event_frame(event)

    async def _send_locked(self, batch: Iterable[StreamEvent]) -> None:
        frames: list[str] = []
        for event in batch:
            if event.sequence <= self.last:
                continue  # never a duplicate, whatever the backend resends
            self.last = event.sequence
            if isinstance(event, MessagePart) or event.message_id not in self.skip:
                frames.append(self._frame(event))
        if frames:
            await self.stream.write_frames(frames)

    async def send_messages(
        self, messages: list[ChatMessage], catch_up: bool = True, first: bool = False
    ) -> None:
        if catch_up:
            # Chunks stored by now include every chunk of a reply this list shows finished
            # (a reply ends after its last chunk), so a reader never sees it end early.
            current = self.backend.watch_events(self.user, self.session_id, self.last)
            async with closing(current) as now:
                await self.send_events(await anext(aiter(now)))
        await self.stream.send("messages", await self.messages_body(messages, first))

    async def messages_body(self, messages: list[ChatMessage], first: bool) -> dict[str, object]:
        """The ``messages`` event; the first one says where earlier messages start."""
        body: dict[str, object] = {"messages": converter.unstructure(messages)}
        if first:
            body["earlier"] = await earlier_cursor(
                self.backend, self.user, self.session_id, messages
            )
        return body

    async def first_messages(
        self, messages: AsyncIterator[list[ChatMessage]]
    ) -> list[ChatMessage] | None:
        """The watch's first list, or None once a failure to read it was sent as ``error``."""
        try:
            return await anext(aiter(messages))
        except OrchestratorError as exc:
            await self.stream.send("error", error_body(exc))
            return None

    async def run(self, fresh: bool) -> None:
        async with closing(self.backend.watch_messages(self.user, self.session_id)) as messages:
            first = await self.first_messages(messages)
            if first is None:
                return
            if fresh:
                # The list comes first so the browser can place the chunks that follow;
                # replies it shows finished are whole, so their chunks are not needed.
                self.skip = frozenset(m.message_id for m in first if m.completed)
            await self.send_messages(first, catch_up=not fresh, first=True)
            async with anyio.create_task_group() as tg:
                done = tg.cancel_scope
                tg.start_soon(self.stream.keepalive)
                tg.start_soon(self.stream.pump, messages, self.send_messages, done)
                events = self.backend.watch_events(self.user, self.session_id, self.last)
                tg.start_soon(self.stream.pump, events, self.send_events, done)
                self.relay_requests(tg, done)

    def relay_requests(self, tg: anyio.abc.TaskGroup, done: anyio.CancelScope) -> None:
        """Send the session's permission requests and questions now and on every change."""
        requests = self.backend.watch_requests(self.user, self.session_id)
        tg.start_soon(self.stream.pump, requests, self.send_requests, done)

    async def send_requests(
        self, requests: tuple[list[PermissionRequest], list[QuestionRequest]]
    ) -> None:
        permissions, questions = requests
        body = {
            "permissions": converter.unstructure(permissions),
            "questions": converter.unstructure(questions),
        }
        if body != self.requests_sent:
            self.requests_sent = body
            await self.stream.send("requests", body)


class _LiveSessionRelay(_SessionRelay):
    """Relays one session from the live relay's memory: stored events, unstored ones, the tail.

    No backend read on the hot path: each event comes off this reader's bounded
    queue. A reader whose queue overflowed, or that resumes from a sequence this
    server never gave (ahead of it, or shown by a server that stopped before
    storing it), gets a ``snapshot`` event and then starts over as a fresh stream.
    """

    def __init__(self, *args: Any, relay: LiveRelay, live: SessionLive) -> None:
        super().__init__(*args)
        self.relay = relay
        self.live = live
        self.attachment = live.attach()

    async def _replay(self, upto: int) -> None:
        """Stored events after ``self.last`` up to ``upto`` (paginated), under the lock."""
        if self.last >= upto:
            return
        async with closing(
            self.backend.watch_events(self.user, self.session_id, self.last)
        ) as pages:
            async for page in pages:
                await self._send_locked([e for e in page if e.sequence <= upto])
                if len(page) < EVENT_PAGE or not page or page[-1].sequence >= upto:
                    return

    def _frame(self, event: StreamEvent) -> str:
        # Live events are the same objects for every reader of the session: encoded once.
        return LIVE_FRAMES.frame(event, event_frame)

    async def start(
        self, messages: list[ChatMessage], after: int | None, reason: str | None
    ) -> None:
        """Send what the reader misses, from ``after`` or as a (snapshot) fresh stream."""
        async with self._lock:
            attachment = self.attachment
            if reason is not None:
                await self.stream.send("snapshot", {"reason": reason})
            if after is None:
                self.last = 0
                self.skip = frozenset(m.message_id for m in messages if m.completed)
                await self.stream.send("messages", await self.messages_body(messages, True))
            else:
                self.last = after
                self.skip = frozenset()
            await self._replay(attachment.stored)
            await self._send_locked(attachment.unstored)
            if after is not None:
                await self.stream.send("messages", await self.messages_body(messages, True))

    async def send_messages(
        self, messages: list[ChatMessage], catch_up: bool = True, first: bool = False
    ) -> None:
        async with self._lock:
            # Every chunk of a reply is queued before the reply is stored as finished.
            await self._send_locked(self.attachment.subscriber.take())
            await self.stream.send("messages", {"messages": converter.unstructure(messages)})

    async def tail(self) -> None:
        """The live tail; a reader that fell too far behind starts over from a snapshot."""
        while True:
            subscriber = self.attachment.subscriber
            await subscriber.wait()
            if subscriber.overflowed:
                self.live.detach(subscriber)
                self.attachment = self.live.attach()
                page = await self.backend.list_messages_page(self.user, self.session_id)
                await self.start(list(page.items[::-1]), None, "slow")
                continue
            async with self._lock:
                await self._send_locked(subscriber.take())

    async def run_live(self, after: int | None) -> None:
        try:
            async with closing(self.backend.watch_messages(self.user, self.session_id)) as messages:
                first = await self.first_messages(messages)
                if first is None:
                    return
                known = (
                    after is None
                    or self.attachment.known(after)
                    or after <= await self.relay.store.last_sequence(self.session_id)
                )
                await self.start(first, after if known else None, None if known else "ahead")
                async with anyio.create_task_group() as tg:
                    done = tg.cancel_scope
                    tg.start_soon(self.stream.keepalive)
                    tg.start_soon(self.stream.pump, messages, self.send_messages, done)
                    tg.start_soon(self.tail)
                    # Events written to the backend directly (a machine in this process, not
                    # over the live channel) still reach the reader; live ones wake no read.
                    direct = self.backend.watch_events(self.user, self.session_id, self.last)
                    tg.start_soon(self.stream.pump, direct, self.send_events, done)
                    self.relay_requests(tg, done)
        finally:
            self.live.detach(self.attachment.subscriber)


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
            live = request.app.get(LIVE)
            if live is None:
                relay = _SessionRelay(stream, backend, user, session_id, after or 0)
                await relay.run(fresh=after is None)
            else:
                state = await live.session(session_id)
                args = (stream, backend, user, session_id, after or 0)
                await _LiveSessionRelay(*args, relay=live, live=state).run_live(after)
        except* ConnectionResetError:
            pass  # the browser went away; it reconnects with Last-Event-ID
    return stream.response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the chat stream."""
    router.add_get("/api/sessions/{session_id}/stream", session_stream)

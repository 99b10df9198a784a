"""The machine's live channel to ``orchestrator serve``: each event sent at once, kept until stored.

Frames on a WebSocket of the machine API: ``{"live": n, "event": {...}}`` out
(what is ready together goes as one ``{"batch": [frame, ...]}``, so a busy
machine sends one WebSocket message per burst, not one per delta),
``{"ack": [n, ...]}`` (stored) and ``{"refused": n, "error": ..., "type": ...}``
in. Every event not yet acknowledged is kept and sent again, in order, after
any reconnect; the server skips what it already has (writes are keyed by part
and offset), so nothing is lost and nothing doubles. A delta refused for a gap
is sent again from the length the server holds; one the server could not take
for now (its backend unavailable) is kept and sent again while draining.
"""

from __future__ import annotations

import json
import logging
from typing import Final

import aiohttp
import anyio
import attrs

from orchestrator.adapters.parts_json import body_to_dict
from orchestrator.adapters.remote._transport import MachineApiClient
from orchestrator.domain.errors import BackendUnavailable
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId
from orchestrator.domain.live import GrowingText, LiveEvent, LiveText
from orchestrator.domain.parts import PartId, TextKind

log = logging.getLogger(__name__)

_SEND_ERRORS: Final = (aiohttp.ClientError, ConnectionError, RuntimeError, OSError)
#: Most frames, and characters, sent as one batch (well under the server's message limit).
BATCH_FRAMES: Final = 500
BATCH_CHARS: Final = 1 << 20


def batch_frame(frames: list[str]) -> str:
    """One WebSocket message carrying ``frames`` (already JSON) in order."""
    return frames[0] if len(frames) == 1 else '{"batch":[' + ",".join(frames) + "]}"


def event_frame(number: int, event: LiveEvent) -> str:
    """The JSON frame of one live event."""
    common: dict[str, object] = {
        "session_id": event.session_id,
        "message_id": event.message_id,
        "part_id": event.part_id,
    }
    if isinstance(event, LiveText):
        body = {
            "type": "text",
            **common,
            "kind": event.kind.value,
            "offset": event.offset,
            "text": event.text,
        }
    else:
        body = {"type": "part", **common, "body": body_to_dict(event.body)}
    return json.dumps({"live": number, "event": body}, ensure_ascii=False, separators=(",", ":"))


class LiveOutbox:
    """Implements :class:`orchestrator.domain.ports.LiveSink` over the machine API's WebSocket."""

    def __init__(self, client: MachineApiClient, token: MachineToken) -> None:
        self.client = client
        self.token = token
        #: Events sent and not yet stored, by number, in the order they were made.
        self.unacked: dict[int, LiveEvent] = {}
        #: How many of ``unacked`` belong to each session (``drain`` waits for zero).
        self._unacked_by_session: dict[ChatSessionId, int] = {}
        #: Frames waiting for the writer task (only while the socket is up).
        self._queue: list[str] = []
        self._queued = anyio.Event()
        #: Each reply part's text as sent (for gap repairs), appended without copying.
        self._texts: dict[tuple[MessageId, PartId, TextKind], GrowingText] = {}
        #: The number of the last event sent for each session, and of the last store request.
        self._last_sent: dict[ChatSessionId, int] = {}
        self._number = 0
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._acked = anyio.Event()
        self._lock = anyio.Lock(fast_acquire=True)  # per message: no loop pass when free
        #: Events the server could not take for now (its backend down): sent again by drain.
        self._again: set[int] = set()

    async def send(self, event: LiveEvent) -> None:
        """Send one event now; it is kept until the server says it is stored."""
        self._number += 1
        self._keep(self._number, event)
        self._last_sent[event.session_id] = self._number
        if isinstance(event, LiveText):
            key = (event.message_id, event.part_id, event.kind)
            text = self._texts.get(key)
            if text is None:
                text = self._texts[key] = GrowingText()
            text.place(event.offset, event.text)
        self._enqueue(event_frame(self._number, event))

    def _keep(self, number: int, event: LiveEvent) -> None:
        self.unacked[number] = event
        session = event.session_id
        self._unacked_by_session[session] = self._unacked_by_session.get(session, 0) + 1

    def _stored(self, number: int) -> LiveEvent | None:
        event = self.unacked.pop(number, None)
        if event is not None:
            left = self._unacked_by_session[event.session_id] - 1
            if left:
                self._unacked_by_session[event.session_id] = left
            else:
                del self._unacked_by_session[event.session_id]
        return event

    def _enqueue(self, frame: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # sent again after the reconnect
        self._queue.append(frame)
        self._queued.set()

    async def drain(self, session_id: ChatSessionId) -> None:
        """Until every event sent for the session is stored (asking the server to store now).

        The request to store goes again only when something of the session was sent
        after it, or nothing came back for a second (a reconnect may have lost it):
        not on every acknowledgement of other sessions' events, which with many
        sessions draining at once flooded the server with requests to store.
        """
        sync = json.dumps({"sync": session_id})
        synced = self._last_sent.get(session_id, 0)
        self._enqueue(sync)
        while self._unacked_by_session.get(session_id):
            acked = self._acked
            with anyio.move_on_after(1.0) as waited:
                await acked.wait()
            for number in sorted(self._again):
                event = self.unacked.get(number)
                if event is None or event.session_id == session_id:
                    self._again.discard(number)
                if event is not None and event.session_id == session_id:
                    self._enqueue(event_frame(number, event))
                    synced = -1  # sent again: store it too
            if waited.cancelled_caught or self._last_sent.get(session_id, 0) > synced:
                synced = self._last_sent.get(session_id, 0)
                self._enqueue(sync)
        self._last_sent.pop(session_id, None)  # nothing of it left to store

    def forget(self, message_id: MessageId) -> None:
        """Drop the text kept for gap repairs of a reply that ended."""
        for key in [k for k in self._texts if k[0] == message_id]:
            del self._texts[key]

    async def _send_queued(self) -> None:
        """The writer: whatever is queued goes out together, in order, as it becomes ready."""
        while True:
            await self._queued.wait()
            self._queued = anyio.Event()
            while self._queue:
                frames: list[str] = []
                size = 0
                for frame in self._queue:
                    if frames and (len(frames) >= BATCH_FRAMES or size + len(frame) > BATCH_CHARS):
                        break
                    frames.append(frame)
                    size += len(frame)
                del self._queue[: len(frames)]
                await self._write(batch_frame(frames))

    async def _write(self, frame: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            return  # sent again after the reconnect
        async with self._lock:
            try:
                await ws.send_str(frame)
            except _SEND_ERRORS as exc:
                log.info("Live event not sent now (%s); it is sent again on reconnect", exc)

    async def run(self) -> None:
        """Keep the WebSocket up; after each (re)connect send every unstored event again."""
        failures = 0
        while True:
            try:
                ws = await self.client.open_websocket(self.token)
            except (aiohttp.ClientError, OSError, TimeoutError, BackendUnavailable) as exc:
                delay = self.client.backoff(failures)
                failures += 1
                log.warning("Live channel: %s; reconnecting in %.1f s", exc, delay)
                await anyio.sleep(delay)
                continue
            failures = 0
            try:
                self._ws = ws
                self._queue = [event_frame(n, e) for n, e in self.unacked.items()]
                self._queued.set()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._send_queued)
                    async for message in ws:
                        if message.type is aiohttp.WSMsgType.TEXT:
                            await self._handle(message.data)
                    tg.cancel_scope.cancel()
            finally:
                self._ws = None
                self._queue = []
                with anyio.CancelScope(shield=True):
                    await ws.close()
            await anyio.sleep(self.client.backoff(0))

    async def _handle(self, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        acked = frame.get("ack")
        if isinstance(acked, list):
            for number in acked:
                if isinstance(number, int):
                    self._stored(number)
            self._acked.set()
            self._acked = anyio.Event()
            return
        number = frame.get("refused")
        if not isinstance(number, int) or number not in self.unacked:
            return
        if frame.get("type") == BackendUnavailable.__name__:
            self._again.add(number)  # not refused for good: kept and sent again
            return
        event = self._stored(number)
        assert event is not None
        self._acked.set()
        self._acked = anyio.Event()
        stored = frame.get("stored_length")
        if isinstance(event, LiveText) and isinstance(stored, int):
            known = self._texts.get((event.message_id, event.part_id, event.kind))
            if known is not None and known.length > stored:
                # The server lacks text before this delta: send it all.
                await self.send(attrs.evolve(event, offset=stored, text=known.text[stored:]))
                return
        log.warning("The server refused a live event: %s", frame.get("error"))

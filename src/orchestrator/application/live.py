"""The live relay: machine events shown to a session's readers at once, stored in batches.

Live and durable are apart. :meth:`LiveRelay.receive` checks an event against
the reply as this process holds it in memory (loaded from the backend once per
reply), numbers it with the session's next sequence and puts it on every
reader's queue -- no backend read or write on that path. A per-session task
stores what was accepted in batches (at most one write per ``window`` or
``max_chars``; text arriving slowly gathers up to ``gather`` windows until it
holds ``min_chars``) through :class:`~orchestrator.domain.ports.LiveEventStore` and
then acknowledges the machine's event numbers, so the machine keeps, and
re-sends after any reconnect, exactly what is not yet stored.

Sequences are given here, on the server, when an event is first accepted, and
stored under the same number: a browser that saw sequence ``k`` live and
reconnects reads the stored events after ``k`` and then the unstored ones from
memory, with nothing twice and nothing missing. The server is the only writer
of a session's events, so its in-memory counter cannot collide; a restarted
server starts :data:`~orchestrator.domain.live.RESTART_JUMP` past what was
stored, so numbers the previous process showed but never stored are not reused
for other text (a reader holding one gets a snapshot instead).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

import anyio
import anyio.abc
import attrs

from orchestrator.domain.chat import MAX_CHUNK_LENGTH, ChatChunk, ChatMessage
from orchestrator.domain.errors import BackendUnavailable, OrchestratorError
from orchestrator.domain.ids import ChatSessionId, ChunkId, MachineToken, MessageId
from orchestrator.domain.live import (
    RESTART_JUMP,
    GrowingText,
    LiveEvent,
    LivePart,
    LiveText,
    ReasoningChunk,
    SequencedEvent,
)
from orchestrator.domain.parts import (
    MessagePart,
    PartId,
    ReasoningPart,
    StepFinishPart,
    StepStartPart,
    StreamEvent,
    TextAppend,
    TextKind,
    TextPart,
    replace_part,
    text_added,
    text_part,
)
from orchestrator.domain.ports import Clock, LiveEventStore

log = logging.getLogger(__name__)

#: Acknowledges the machine's event numbers once they are stored.
Ack = Callable[[list[int]], Awaitable[None]]

#: Events a reader may fall behind by before it is sent a snapshot instead.
QUEUE_LIMIT = 2000
#: Parts that only mark where a model call starts and ends, or hold text (which grows by
#: deltas): they ride with the text around them rather than make a batch worth a write.
_MARKERS = (StepStartPart, StepFinishPart, TextPart, ReasoningPart)
#: The timestamp of a chunk shown live, before it is stored (made once, not per delta).
_LIVE_TIME = datetime.fromtimestamp(0, UTC)  # aware, as every record time is


@attrs.define(eq=False)
class Subscriber:
    """One reader's bounded queue; a reader that falls too far behind is marked ``overflowed``."""

    limit: int = QUEUE_LIMIT
    overflowed: bool = False
    _items: deque[StreamEvent] = attrs.field(factory=deque)
    _ready: anyio.Event = attrs.field(factory=anyio.Event)

    def put(self, event: StreamEvent) -> None:
        if self.overflowed:
            return
        if self._items and (merged := _joined(self._items[-1], event)) is not None:
            self._items[-1] = merged  # one frame for a burst of one part's text
        elif len(self._items) >= self.limit:
            self.overflowed = True  # the reader starts over from a snapshot
            self._items.clear()
        else:
            self._items.append(event)
        self._ready.set()

    def take(self) -> list[StreamEvent]:
        """Everything queued now (without waiting)."""
        items = list(self._items)
        self._items.clear()
        # A waiter on the old event wakes, finds nothing and waits on the new one.
        self._ready.set()
        self._ready = anyio.Event()
        return items

    async def wait(self) -> None:
        """Until something is queued or the reader overflowed."""
        while not self._items and not self.overflowed:
            await self._ready.wait()

    def reset(self) -> None:
        """Start again after a snapshot."""
        self.overflowed = False
        self.take()


def _joined(waiting: StreamEvent, event: StreamEvent) -> ChatChunk | None:
    """``waiting`` and the chunk right after it in the same part as one chunk, else None.

    The joined chunk carries the later sequence (and chunk ID): a reader that saw it
    has seen both, and resumes after it exactly as after the second alone.
    """
    if (
        type(waiting) is not type(event)
        or not isinstance(waiting, ChatChunk)
        or not isinstance(event, ChatChunk)
        or waiting.part_id is None
        or waiting.offset is None
        or (waiting.message_id, waiting.part_id) != (event.message_id, event.part_id)
        or waiting.offset + len(waiting.chunk) != event.offset
        or len(waiting.chunk) + len(event.chunk) > MAX_CHUNK_LENGTH
    ):
        return None
    return attrs.evolve(
        waiting,
        chunk=waiting.chunk + event.chunk,
        sequence=event.sequence,
        chunk_id=event.chunk_id,
    )


def _wakes(item: SequencedEvent | None) -> bool:
    """Whether an accepted event makes its batch worth a write of its own: a part that
    is not a marker."""
    return (
        item is not None
        and isinstance(item.event, LivePart)
        and not isinstance(item.event.body, _MARKERS)
    )


@attrs.define
class _Pending:
    item: SequencedEvent | None  # None: a re-sent event that changed nothing, only acknowledged
    token: MachineToken
    ack: Ack | None
    number: int | None


@attrs.frozen
class Attachment:
    """Where a new reader starts: stored events, then ``unstored`` ones, then its queue."""

    subscriber: Subscriber
    #: Events up to this sequence are stored (read them from the backend).
    stored: int
    unstored: tuple[StreamEvent, ...]
    #: The stored sequence when this process started numbering, and its first own number.
    floor: int
    start: int
    #: The last sequence given.
    current: int

    def known(self, after: int) -> bool:
        """Whether ``after`` is a sequence this relay can resume from exactly."""
        return after <= self.floor or self.start <= after <= self.current


@attrs.define
class SessionLive:
    """One session's live state: sequence, replies in progress, readers, unstored events."""

    session_id: ChatSessionId
    floor: int
    sequence: int
    stored: int
    replies: dict[MessageId, dict[PartId, MessagePart]] = attrs.field(factory=dict)
    #: The text of each text or reasoning part that grew here: the part in ``replies``
    #: keeps the text it had before (a delta appends here, it does not copy the reply).
    texts: dict[MessageId, dict[PartId, GrowingText]] = attrs.field(factory=dict)
    positions: dict[MessageId, int] = attrs.field(factory=dict)
    messages: dict[MessageId, ChatMessage] = attrs.field(factory=dict)
    #: The machine whose streaming reply each is (checked on every event).
    owners: dict[MessageId, str] = attrs.field(factory=dict)
    pending: list[_Pending] = attrs.field(factory=list)
    pending_chars: int = 0
    subscribers: set[Subscriber] = attrs.field(factory=set)
    dirty: anyio.Event = attrs.field(factory=anyio.Event)
    urgent: anyio.Event = attrs.field(factory=anyio.Event)
    #: Set once what is pending is worth a write of its own: ``LiveRelay.min_chars`` of
    #: text, or a part other than a marker (a tool call moving on does not wait for text
    #: to gather; a step's start or finish does).
    filled: anyio.Event = attrs.field(factory=anyio.Event)
    #: Taken per event: uncontended, it does not yield to the event loop (one loop pass per
    #: delta saved; the fan-out of a machine's batch of frames happens in one go).
    lock: anyio.Lock = attrs.field(factory=lambda: anyio.Lock(fast_acquire=True))
    store_lock: anyio.Lock = attrs.field(factory=anyio.Lock)
    #: Dropped from the relay (nothing unstored, no reader, no reply): a new one takes over.
    closed: bool = False

    def attach(self) -> Attachment:
        subscriber = Subscriber()
        self.subscribers.add(subscriber)
        unstored = tuple(_shown(p.item, self) for p in self.pending if p.item is not None)
        return Attachment(
            subscriber,
            self.stored,
            tuple(e for e in unstored if e is not None),
            self.floor,
            self.floor + RESTART_JUMP,
            self.sequence,
        )

    def detach(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        self.dirty.set()  # the storing task checks whether the session can be dropped

    @property
    def idle(self) -> bool:
        """Nothing unstored, no reader, no reply in progress: safe to drop from memory."""
        return not (self.pending or self.subscribers or self.replies or self.lock.locked())

    def publish(self, event: StreamEvent) -> None:
        for subscriber in self.subscribers:
            subscriber.put(event)

    def part(self, message_id: MessageId, part_id: PartId) -> MessagePart | None:
        """The reply's part as it is now, with all the text it grew here."""
        parts = self.replies.get(message_id, {})
        part = parts.get(part_id)
        grown = self.texts.get(message_id, {}).get(part_id)
        if part is None or grown is None:
            return part
        body = part.body
        if isinstance(body, TextPart | ReasoningPart) and len(body.text) != grown.length:
            part = parts[part_id] = attrs.evolve(part, body=attrs.evolve(body, text=grown.text))
        return part


def _shown(
    item: SequencedEvent, live: SessionLive, *, appended: bool = False
) -> StreamEvent | None:
    """What readers are sent for an accepted event: a chunk for reply text, else the part.

    With ``appended`` (the live fan-out, whose readers hold the part so far) reasoning
    text after the part's first delta goes as a :class:`ReasoningChunk` instead of the
    whole part again (the first shows the part whole: where it goes, what it is).
    """
    event = item.event
    grows = appended and event.offset > 0 if isinstance(event, LiveText) else False
    if isinstance(event, LiveText) and (grows or event.kind is TextKind.TEXT):
        kind = ChatChunk if event.kind is TextKind.TEXT else ReasoningChunk
        return kind(
            chunk_id=ChunkId(item.chunk_id),
            message_id=event.message_id,
            chat_session_id=event.session_id,
            chunk=event.text,
            sequence=item.sequence,
            timestamp=_LIVE_TIME,
            part_id=event.part_id,
            offset=event.offset,
        )
    part = live.part(event.message_id, event.part_id)
    if part is None or isinstance(part.body, TextPart):
        return None
    return attrs.evolve(part, sequence=item.sequence)


@attrs.define
class LiveRelay:
    """The server's live relay for every session with a machine streaming into it."""

    store: LiveEventStore
    clock: Clock
    #: Seconds a batch waits for more events, and characters that store it at once.
    window: float = 2.0
    max_chars: int = 8000
    #: Text alone and shorter than ``min_chars`` after a window (a model writing a few
    #: words a second) waits for more, up to ``gather`` windows in all: a slow stream is
    #: not stored a few words per write. Nothing waits longer to be shown, and the
    #: machine keeps the unstored text until it is stored.
    min_chars: int = 1000
    gather: int = 5
    sessions: dict[ChatSessionId, SessionLive] = attrs.field(factory=dict)
    #: Batches stored so far (each one backend write), and the characters of text in them,
    #: sessions dropped from memory included.
    writes: int = attrs.field(default=0, init=False)
    chars: int = attrs.field(default=0, init=False)
    _tg: anyio.abc.TaskGroup | None = None
    _opening: dict[ChatSessionId, anyio.Event] = attrs.field(factory=dict)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Store batches until cancelled; what is unstored then is stored before leaving."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for live in self.sessions.values():
                    tg.start_soon(self._store_loop, live)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                for live in list(self.sessions.values()):
                    await self._store(live)
            log.info("live relay: %d durable writes for %d characters", self.writes, self.chars)

    async def session(self, session_id: ChatSessionId) -> SessionLive:
        """The session's live state, created (and its stored sequence read) on first use."""
        while (live := self.sessions.get(session_id)) is None:
            opening = self._opening.get(session_id)
            if opening is not None:
                await opening.wait()
                continue
            opening = self._opening[session_id] = anyio.Event()
            try:
                floor = await self.store.last_sequence(session_id)
                start = floor + RESTART_JUMP
                live = SessionLive(session_id, floor, start, start)
                self.sessions[session_id] = live
                if self._tg is not None:
                    self._tg.start_soon(self._store_loop, live)
            finally:
                del self._opening[session_id]
                opening.set()
        return live

    def ready(self, token: MachineToken, event: LiveEvent) -> bool:
        """Whether :meth:`receive` takes ``event`` now, without a backend read or a wait."""
        live = self.sessions.get(event.session_id)
        return (
            live is not None
            and not live.closed
            and not live.lock.locked()
            and event.message_id in live.replies
            and live.owners.get(event.message_id) == token.machine_id
        )

    async def receive(
        self,
        token: MachineToken,
        event: LiveEvent,
        ack: Ack | None = None,
        number: int | None = None,
    ) -> int | None:
        """Accept one event: number it and show it to readers; None if it changed nothing.

        Refused (and nothing changed) when the reply is not this machine's streaming
        reply in that session, or a delta leaves a gap (:class:`TextGap`).
        """
        live = await self._locked(event.session_id)
        try:
            parts = await self._reply(live, token, event.message_id)
            item = self._apply(live, event, live.messages[event.message_id], parts)
            live.pending.append(_Pending(item, token, ack, number))
            if item is not None:
                live.sequence = item.sequence
                if isinstance(item.event, LiveText):
                    live.pending_chars += len(item.event.text)
                shown = _shown(item, live, appended=True)
                if shown is not None:
                    live.publish(shown)
            if live.pending_chars >= self.max_chars:
                live.urgent.set()
            if live.pending_chars >= self.min_chars or _wakes(item):
                live.filled.set()
            return None if item is None else item.sequence
        finally:
            live.dirty.set()  # store it, or drop the state of a session refused here
            live.lock.release()

    async def prepare(self, token: MachineToken, reply: ChatMessage) -> None:
        """Read a reply the machine just claimed, so its first event needs no backend read.

        Refused like that first event (not this machine's streaming reply): nothing is kept.
        """
        live = await self._locked(reply.chat_session_id)
        try:
            await self._reply(live, token, reply.message_id)
        finally:
            live.dirty.set()  # refused: the storing task drops the empty state
            live.lock.release()

    def prepare_soon(self, token: MachineToken, reply: ChatMessage) -> None:
        """:meth:`prepare` in the background (a refusal is left to the first event)."""

        async def prepare() -> None:
            try:
                await self.prepare(token, reply)
            except OrchestratorError as exc:
                log.debug("Reply %s not read ahead: %s", reply.message_id, exc)

        if self._tg is not None:
            self._tg.start_soon(prepare)

    async def _locked(self, session_id: ChatSessionId) -> SessionLive:
        """The session's live state with its lock held (the caller releases it)."""
        live = await self.session(session_id)
        await live.lock.acquire()
        while live.closed:  # dropped while this waited: the session's new state takes it
            live.lock.release()
            live = await self.session(session_id)
            await live.lock.acquire()
        return live

    async def _reply(
        self, live: SessionLive, token: MachineToken, message_id: MessageId
    ) -> dict[PartId, MessagePart]:
        """The parts of this machine's streaming reply, read from the backend the first time."""
        parts = live.replies.get(message_id)
        if parts is None or live.owners.get(message_id) != token.machine_id:
            state = await self.store.reply_state(token, live.session_id, message_id)
            parts = {p.part_id: p for p in state.parts}
            live.replies[message_id] = parts
            live.texts.pop(message_id, None)
            live.positions[message_id] = state.next_position
            live.messages[message_id] = state.message
            live.owners[message_id] = token.machine_id
        return parts

    def _apply(
        self,
        live: SessionLive,
        event: LiveEvent,
        reply: ChatMessage,
        parts: dict[PartId, MessagePart],
    ) -> SequencedEvent | None:
        now = self.clock.now()
        stored = parts.get(event.part_id)
        position = live.positions[event.message_id]
        sequence = live.sequence + 1
        if isinstance(event, LiveText):
            delta = TextAppend(event.part_id, event.offset, event.text, event.kind)
            part = text_part(stored, reply, delta, position, now)
            texts = live.texts.setdefault(event.message_id, {})
            grown = texts.get(event.part_id)
            if grown is None:
                body = part.body
                assert isinstance(body, TextPart | ReasoningPart)
                grown = texts[event.part_id] = GrowingText.of(body.text)
            added = text_added(grown.length, event.offset, event.text)
            if not added:
                return None
            # Only what was added, at the offset it went to: an overlap is trimmed here.
            text_event = attrs.evolve(event, offset=grown.length, text=added)
            grown.append(added)
            part = attrs.evolve(part, updated_at=now)
            result = SequencedEvent(text_event, sequence)
        else:
            stored = live.part(event.message_id, event.part_id)
            part = replace_part(stored, reply, event.part_id, event.body, position, now)
            if stored is not None and part.body == stored.body:
                return None
            live.texts.get(event.message_id, {}).pop(event.part_id, None)  # whole in the part
            result = SequencedEvent(event, sequence)
        if stored is None:
            live.positions[event.message_id] = position + 1
        parts[event.part_id] = attrs.evolve(part, sequence=sequence)
        return result

    async def settle(self, message_id: MessageId) -> None:
        """Store now everything accepted for the session of ``message_id`` (before it ends)."""
        for live in list(self.sessions.values()):
            if message_id in live.replies:
                await self._store(live)
                _forget(live, message_id)

    async def flush_all(self) -> None:
        """Store now everything accepted, in every session."""
        for live in list(self.sessions.values()):
            await self._store(live)

    def forget_machine(self, machine_id: str) -> None:
        """Drop the replies of a machine set offline: its later events are checked (refused)."""
        for live in list(self.sessions.values()):
            for message_id, owner in list(live.owners.items()):
                if owner == machine_id:
                    _forget(live, message_id)

    async def flush(self, session_id: ChatSessionId) -> None:
        """Store now everything accepted for the session."""
        live = self.sessions.get(session_id)
        if live is not None:
            await self._store(live)

    async def _store_loop(self, live: SessionLive) -> None:
        while True:
            # Only this task replaces the events: a waiter never holds a stale one.
            await live.dirty.wait()
            live.dirty = anyio.Event()
            with anyio.move_on_after(self.window):
                await live.urgent.wait()
            if self._trickling(live):
                with anyio.move_on_after(self.window * (self.gather - 1)):
                    await live.filled.wait()
            live.urgent, live.filled = anyio.Event(), anyio.Event()
            if not await self._store(live):
                live.dirty.set()  # kept: tried again after the next window
                await anyio.sleep(self.window)
                continue
            if live.idle and self.sessions.get(live.session_id) is live:
                live.closed = True
                del self.sessions[live.session_id]
                return

    def _trickling(self, live: SessionLive) -> bool:
        """Whether only a little text (and markers) waits: worth gathering more before a write."""
        items = [p.item for p in live.pending if p.item is not None]
        return (
            bool(items)
            and not live.urgent.is_set()
            and live.pending_chars < self.min_chars
            and not any(_wakes(item) for item in items)
        )

    async def _store(self, live: SessionLive) -> bool:
        """Store and acknowledge what is pending; False if the backend could not take all of it.

        Events the backend cannot take now (:class:`BackendUnavailable`: down, busy,
        a full disk) stay pending and unacknowledged, in order, however long that
        lasts; the machine keeps them too. Only events refused for good are dropped.
        """
        async with live.store_lock:
            batch = list(live.pending)
            # What arrives while this batch is written counts towards the next one alone
            # (counted again, the batch's own text made a few words look worth a write).
            live.pending_chars = 0
            done = 0
            for token, items, count in _runs(batch):
                if token is not None and items:
                    try:
                        await self.store.store_events(token, items)
                        self.writes += 1
                        self.chars += sum(
                            len(i.event.text) for i in items if isinstance(i.event, LiveText)
                        )
                    except BackendUnavailable as exc:
                        log.warning(
                            "Live events of session %s kept to store again: %s",
                            live.session_id,
                            exc.message,
                        )
                        break
                    except OrchestratorError as exc:
                        # Refused as a whole (the reply ended, the machine was removed): these
                        # events can never be stored, so they are acknowledged and dropped.
                        log.warning(
                            "Live events of session %s not stored: %s", live.session_id, exc
                        )
                done += count
            handled = batch[:done]
            del live.pending[:done]
            live.pending_chars = sum(
                len(p.item.event.text)
                for p in live.pending
                if p.item is not None and isinstance(p.item.event, LiveText)
            )
            stored = [p.item.sequence for p in handled if p.item is not None]
            if stored:
                live.stored = max(live.stored, stored[-1])
            await _acknowledge(handled)
            return done == len(batch)


#: Told why an event was refused (the machine then re-sends or drops it).
Refuse = Callable[[OrchestratorError], Awaitable[None]]


class LiveIntake:
    """One machine connection's events: in order per session, sessions side by side.

    An event :meth:`LiveRelay.receive` takes at once (its reply already in memory,
    the usual delta) is taken inline, with no task or queue. One that needs a
    backend read (the first event of a reply, a session opened anew) waits in its
    session's queue, run by a task of ``tg``; later events of that session queue
    behind it so their order holds, while the other sessions' events go on: one
    slow read no longer holds back every session of the machine.
    """

    def __init__(self, relay: LiveRelay, tg: anyio.abc.TaskGroup) -> None:
        self.relay = relay
        self.tg = tg
        self._queues: dict[ChatSessionId, deque[Callable[[], Awaitable[None]]]] = {}

    async def submit(
        self,
        token: MachineToken,
        event: LiveEvent,
        refuse: Refuse,
        ack: Ack | None = None,
        number: int | None = None,
    ) -> None:
        """Take ``event`` now if it can be, else after its session's earlier events."""

        async def take() -> None:
            try:
                await self.relay.receive(token, event, ack, number)
            except OrchestratorError as exc:
                await refuse(exc)

        if event.session_id not in self._queues and self.relay.ready(token, event):
            await take()
        else:
            self._enqueue(event.session_id, take)

    def sync(self, session_id: ChatSessionId) -> None:
        """Store the session's events in the background, after those still queued."""

        async def flush() -> None:
            self.tg.start_soon(self.relay.flush, session_id)

        if session_id in self._queues:
            self._enqueue(session_id, flush)
        else:
            self.tg.start_soon(self.relay.flush, session_id)

    def _enqueue(self, session_id: ChatSessionId, job: Callable[[], Awaitable[None]]) -> None:
        queue = self._queues.get(session_id)
        if queue is not None:
            queue.append(job)
            return
        queue = self._queues[session_id] = deque([job])
        self.tg.start_soon(self._run, session_id, queue)

    async def _run(
        self, session_id: ChatSessionId, queue: deque[Callable[[], Awaitable[None]]]
    ) -> None:
        try:
            while queue:
                await queue[0]()
                queue.popleft()
        finally:
            del self._queues[session_id]


def _forget(live: SessionLive, message_id: MessageId) -> None:
    """Drop what the relay holds of a reply that ended."""
    live.replies.pop(message_id, None)
    live.texts.pop(message_id, None)
    live.positions.pop(message_id, None)
    live.messages.pop(message_id, None)
    live.owners.pop(message_id, None)
    live.dirty.set()  # the storing task may drop the session now


def _runs(
    batch: list[_Pending],
) -> Iterable[tuple[MachineToken | None, list[SequencedEvent], int]]:
    """Runs of events from the same machine token, in order, with how many entries each covers.

    An entry that changed nothing (``item`` None) belongs to the run it stands in.
    """
    run: list[SequencedEvent] = []
    token: MachineToken | None = None
    count = 0
    for pending in batch:
        if pending.item is not None and token is not None and pending.token != token:
            yield token, run, count
            run, count = [], 0
        count += 1
        if pending.item is not None:
            token = pending.token
            run.append(pending.item)
    if count:
        yield token, run, count


async def _acknowledge(batch: list[_Pending]) -> None:
    numbers: dict[Ack, list[int]] = {}
    for pending in batch:
        if pending.ack is not None and pending.number is not None:
            numbers.setdefault(pending.ack, []).append(pending.number)
    for ack, listed in numbers.items():
        try:
            await ack(listed)
        except (OSError, ConnectionError, RuntimeError) as exc:
            # The machine went away; it re-sends these after reconnecting, and they add nothing.
            log.info("Could not acknowledge stored events: %s", exc)

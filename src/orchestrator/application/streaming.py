"""Coalescing of streamed text: at most one backend write per short window, not per token."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio
import attrs

from orchestrator.domain.ids import ChatSessionId, MessageId
from orchestrator.domain.live import LiveText
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.domain.ports import LiveSink

#: Writes one piece of text to the backend, in order.
Flush = Callable[[str], Awaitable[object]]

#: How long one flush may wait for the backend; text it could not write stays buffered.
CLOSE_TIMEOUT = 30.0


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` cut into pieces of at most ``max_chars`` characters."""
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)]


@attrs.define
class ChunkCoalescer:
    """Buffers deltas and writes them at most once per ``window`` (or when ``max_chars`` fill).

    The first delta after a quiet spell is written at once (the reader sees the
    reply start without waiting for a window); deltas that follow within the
    window are written together when it ends. Used as an async context manager:
    leaving it writes what is left. Writes never overlap and are never cancelled
    half-way, so the pieces reach the backend whole and in order.
    """

    flush_to: Flush
    window: float = 0.05
    max_chars: int = 4000
    #: How long one flush waits for the backend before giving the turn back (text kept).
    flush_timeout: float = CLOSE_TIMEOUT
    writes: int = 0
    _buffer: list[str] = attrs.field(factory=list)
    _size: int = 0
    _last_write: float = -math.inf
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)
    _pending: anyio.Event = attrs.field(factory=anyio.Event)
    _tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> ChunkCoalescer:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._writer)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()  # the writer only ever stops while waiting
        await self._tg.__aexit__(None, None, None)
        await self.flush()

    @property
    def buffered(self) -> int:
        """Characters buffered and not yet written."""
        return self._size

    async def add(self, text: str) -> None:
        """Buffer ``text``; write at once if the buffer is full."""
        if not text:
            return
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= self.max_chars:
            await self.flush()
        else:
            self._pending.set()

    async def flush(self) -> None:
        """Write everything buffered so far (shielded: a cancelled caller cannot cut it off).

        Text leaves the buffer only once written: a flush that gives up after
        ``flush_timeout`` (the backend down) leaves the rest for the next one, which
        writes it first -- so the pieces reach the backend whole, in order, without a hole.
        """
        with anyio.move_on_after(self.flush_timeout, shield=True):
            async with self._lock:
                self._last_write = anyio.current_time()
                while self._buffer:
                    piece = "".join(self._buffer)[: self.max_chars]
                    await self.flush_to(piece)
                    self.writes += 1
                    rest = "".join(self._buffer)[len(piece) :]  # deltas added meanwhile stay
                    self._buffer[:] = [rest] if rest else []
                    self._size = len(rest)

    async def _writer(self) -> None:
        while True:
            await self._pending.wait()
            self._pending = anyio.Event()
            wait = self._last_write + self.window - anyio.current_time()
            if wait > 0:
                await anyio.sleep(wait)
            await self.flush()


#: Writes one piece of a part's text at its character offset: (part ID, kind, offset, text).
PartWrite = Callable[[str, TextKind, int, str], Awaitable[object]]


@attrs.define
class PartTextStream:
    """Text deltas of a reply's parts, coalesced like :class:`ChunkCoalescer`, written by offset.

    One coalescer serves every part: a delta of another part (or one that does
    not continue the buffered text) first writes what is buffered, so each
    write holds text of one part and says where in that part it goes. A write
    retried after a lost answer lands on the same offset, and the backend skips
    what it already has.
    """

    write: PartWrite
    window: float = 0.05
    max_chars: int = 4000
    flush_timeout: float = CLOSE_TIMEOUT
    _coalescer: ChunkCoalescer | None = None
    _part: tuple[str, TextKind] | None = None
    #: Offset of the first character not yet written, and of the end of the buffer.
    _offset: int = 0
    _end: int = 0

    @property
    def writes(self) -> int:
        """How many writes reached the backend."""
        return 0 if self._coalescer is None else self._coalescer.writes

    async def __aenter__(self) -> PartTextStream:
        self._coalescer = ChunkCoalescer(
            self._flush, self.window, self.max_chars, flush_timeout=self.flush_timeout
        )
        await self._coalescer.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._coalescer is not None
        await self._coalescer.__aexit__(*exc_info)

    async def add(self, part_id: str, kind: TextKind, offset: int, text: str) -> None:
        """Buffer ``text``, which goes at ``offset`` of part ``part_id``."""
        assert self._coalescer is not None
        if (part_id, kind) != self._part or offset != self._end:
            while self._coalescer.buffered:  # the buffer holds one part's text: write it all
                await self._coalescer.flush()
            self._part, self._offset, self._end = (part_id, kind), offset, offset
        self._end += len(text)
        await self._coalescer.add(text)

    async def flush(self) -> None:
        """Write everything buffered so far."""
        if self._coalescer is not None:
            await self._coalescer.flush()

    async def _flush(self, piece: str) -> None:
        assert self._part is not None
        part_id, kind = self._part
        await self.write(part_id, kind, self._offset, piece)
        self._offset += len(piece)


class TextStream(Protocol):
    """Where a runner puts reply text: :class:`PartTextStream` or :class:`LiveTextStream`."""

    async def add(self, part_id: str, kind: TextKind, offset: int, text: str) -> None: ...

    async def flush(self) -> None: ...


@attrs.define
class LiveTextStream:
    """Sends each text delta of a reply at once over a live channel (no window: the
    server shows it at once and batches the writes itself)."""

    live: LiveSink
    session_id: ChatSessionId
    message_id: MessageId

    async def __aenter__(self) -> LiveTextStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def add(self, part_id: str, kind: TextKind, offset: int, text: str) -> None:
        """Send ``text``, which goes at ``offset`` of part ``part_id``."""
        await self.live.send(
            LiveText(self.session_id, self.message_id, PartId(part_id), kind, offset, text)
        )

    async def flush(self) -> None:
        """Nothing is held back."""

"""Coalescing of streamed text: at most one backend write per short window, not per token."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

import anyio
import attrs

#: Writes one piece of text to the backend, in order.
Flush = Callable[[str], Awaitable[object]]

#: How long a write in progress may take to finish when the coalescer closes.
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
        """Write everything buffered so far (shielded: a write is never cut off)."""
        with anyio.move_on_after(CLOSE_TIMEOUT, shield=True):
            async with self._lock:
                if not self._buffer:
                    return
                text = "".join(self._buffer)
                self._buffer.clear()
                self._size = 0
                self._last_write = anyio.current_time()
                for piece in split_text(text, self.max_chars):
                    await self.flush_to(piece)
                    self.writes += 1

    async def _writer(self) -> None:
        while True:
            await self._pending.wait()
            self._pending = anyio.Event()
            wait = self._last_write + self.window - anyio.current_time()
            if wait > 0:
                await anyio.sleep(wait)
            await self.flush()

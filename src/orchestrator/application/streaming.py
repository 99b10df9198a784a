"""Coalescing of streamed text: one backend write per short window, not per token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import attrs

#: Writes one piece of text to the backend, in order.
Flush = Callable[[str], Awaitable[object]]


def split_text(text: str, max_chars: int) -> list[str]:
    """``text`` cut into pieces of at most ``max_chars`` characters."""
    return [text[i : i + max_chars] for i in range(0, len(text), max_chars)] or []


@attrs.define
class ChunkCoalescer:
    """Buffers deltas and flushes them when ``max_chars`` is reached or ``window`` passes.

    Used as an async context manager: leaving it flushes what is left. Flushes
    never overlap, so the pieces reach the backend in the order they came in.
    """

    flush_to: Flush
    window: float = 0.05
    max_chars: int = 4000
    writes: int = 0
    _buffer: list[str] = attrs.field(factory=list)
    _size: int = 0
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock)
    _tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> ChunkCoalescer:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._tick)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)
        await self.flush()

    async def add(self, text: str) -> None:
        """Buffer ``text``; flush at once if the buffer is full."""
        if not text:
            return
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= self.max_chars:
            await self.flush()

    async def flush(self) -> None:
        """Write everything buffered so far."""
        async with self._lock:
            if not self._buffer:
                return
            text = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            for piece in split_text(text, self.max_chars):
                await self.flush_to(piece)
                self.writes += 1

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(self.window)
            await self.flush()

"""Helpers for long-lived responses (SSE, WebSocket) fed by backend subscriptions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Final, TypeVar

import anyio
from aiohttp import web

from orchestrator.adapters.wire import error_body
from orchestrator.domain.errors import OrchestratorError
from orchestrator.entrypoints.web.state import KEEPALIVE, STREAMS

T = TypeVar("T")

#: Seconds between SSE comment lines that keep proxies from closing an idle stream.
KEEPALIVE_SECONDS: Final = 15.0


@contextmanager
def tracked(request: web.Request) -> Iterator[None]:
    """Register the handler's task so server shutdown cancels it instead of waiting."""
    task = asyncio.current_task()
    streams = request.app[STREAMS]
    if task is not None:
        streams.add(task)
    try:
        yield
    finally:
        if task is not None:
            streams.discard(task)


@asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a subscription's iterator on exit, even when the caller was cancelled."""
    try:
        yield iterator
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()


async def cancel_streams(app: web.Application) -> None:
    """``on_shutdown``: end every open stream so shutdown does not wait for clients."""
    streams = app[STREAMS]
    for task in list(streams):
        task.cancel()


def sse_frame(event: str, data: object, event_id: int | None = None) -> str:
    """One Server-Sent Event: ``data`` as compact JSON, with an ``id:`` line if given."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class FrameCache:
    """SSE frames of shared event objects, each encoded once for all the readers it goes to.

    Keyed by the object's identity (the object is held, so its id is not reused).
    Forgets everything once it holds ``limit`` objects or ``limit_chars`` characters
    of frames, so a long reasoning part shown whole after every delta is not kept.
    """

    def __init__(self, limit: int = 4096, limit_chars: int = 4_000_000) -> None:
        self.limit = limit
        self.limit_chars = limit_chars
        #: How many frames were encoded (not taken from the cache).
        self.encoded = 0
        self._frames: dict[int, tuple[object, str]] = {}
        self._chars = 0

    def frame(self, item: object, encode: Callable[[object], str]) -> str:
        """The frame of ``item``: ``encode(item)`` the first time this object is seen."""
        held = self._frames.get(id(item))
        if held is not None and held[0] is item:
            return held[1]
        frame = encode(item)
        self.encoded += 1
        if len(self._frames) >= self.limit or self._chars + len(frame) > self.limit_chars:
            self._frames.clear()
            self._chars = 0
        if len(frame) <= self.limit_chars:
            self._frames[id(item)] = (item, frame)
            self._chars += len(frame)
        return frame


class EventStream:
    """One Server-Sent Events response; frames written by concurrent tasks never interleave."""

    def __init__(self, response: web.StreamResponse, keepalive_seconds: float) -> None:
        self.response = response
        self.keepalive_seconds = keepalive_seconds
        self._lock = anyio.Lock(fast_acquire=True)  # per write: no loop pass when free

    @classmethod
    async def open(cls, request: web.Request) -> EventStream:
        """Start the ``text/event-stream`` response."""
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        return cls(response, request.app.get(KEEPALIVE, KEEPALIVE_SECONDS))

    async def send(self, event: str, data: object, event_id: int | None = None) -> None:
        """One event whose ``data`` is ``data`` as JSON, with an ``id:`` line if given."""
        await self.send_many([(event, data, event_id)])

    async def send_many(self, events: list[tuple[str, object, int | None]]) -> None:
        """Several events in one write."""
        await self.write_frames([sse_frame(*event) for event in events])

    async def write_frames(self, frames: list[str]) -> None:
        """Frames made by :func:`sse_frame`, in one write."""
        async with self._lock:
            await self.response.write("".join(frames).encode())

    async def keepalive(self) -> None:
        """Write a comment line every ``keepalive_seconds``, forever."""
        while True:
            await anyio.sleep(self.keepalive_seconds)
            async with self._lock:
                await self.response.write(b": keepalive\n\n")

    async def pump(
        self,
        source: AsyncIterator[T],
        emit: Callable[[T], Awaitable[None]],
        done: anyio.CancelScope,
    ) -> None:
        """Emit every value of ``source``; a failure becomes one ``error`` event, then ``done``."""
        try:
            async with closing(source) as values:
                async for value in values:
                    await emit(value)
        except OrchestratorError as exc:
            await self.send("error", error_body(exc))
        done.cancel()

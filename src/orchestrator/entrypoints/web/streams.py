"""Helpers for long-lived responses (SSE, WebSocket) fed by backend subscriptions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import anyio
from aiohttp import web

from orchestrator.entrypoints.web.state import STREAMS

T = TypeVar("T")


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

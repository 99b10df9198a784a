"""``GET /api/events``: live updates for the browser as Server-Sent Events.

Events (``data`` is JSON):

* ``machines`` -- ``{"machines": [MachineSummary, ...]}``, at once and on every change;
* ``workers`` -- ``{"machine_id": ..., "workers": [Worker, ...]}`` when the
  request names ``?machine_id=``, at once and on every change;
* ``error`` -- ``{"error": ..., "type": ...}`` once, then the stream ends.

A comment line every :data:`KEEPALIVE_SECONDS` keeps proxies from closing an
idle stream and finds clients that went away.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import anyio
from aiohttp import web

from orchestrator.adapters.remote.wire import converter, error_body
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.ids import MachineId
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import parse_id
from orchestrator.entrypoints.web.state import BACKEND
from orchestrator.entrypoints.web.streams import closing, tracked

KEEPALIVE_SECONDS: Final = 15.0

Send = Callable[[str, object], Awaitable[None]]


async def _pump(
    send: Send,
    event: str,
    source: AsyncIterator[object],
    wrap: Callable[[object], object],
    done: anyio.CancelScope,
) -> None:
    try:
        async with closing(source) as values:
            async for value in values:
                await send(event, wrap(value))
    except OrchestratorError as exc:
        await send("error", error_body(exc))
    done.cancel()


async def _keepalive(response: web.StreamResponse, lock: anyio.Lock) -> None:
    while True:
        await anyio.sleep(KEEPALIVE_SECONDS)
        async with lock:
            await response.write(b": keepalive\n\n")


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /api/events[?machine_id=]``: the user's machines (and one machine's workers), live."""
    user = require_user(request)
    backend = request.app[BACKEND]
    machine_id: MachineId | None = None
    if "machine_id" in request.query:
        machine_id = MachineId(parse_id(request.query["machine_id"], "machine"))
        await backend.get_machine(user, machine_id)  # 404 before the stream starts

    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    lock = anyio.Lock()

    async def send(event: str, data: object) -> None:
        frame = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        async with lock:
            await response.write(frame.encode())

    with tracked(request):
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_keepalive, response, lock)
                tg.start_soon(
                    _pump,
                    send,
                    "machines",
                    backend.watch_machines(user),
                    lambda value: {"machines": converter.unstructure(value)},
                    tg.cancel_scope,
                )
                if machine_id is not None:
                    tg.start_soon(
                        _pump,
                        send,
                        "workers",
                        backend.watch_workers(user, machine_id),
                        lambda value: {
                            "machine_id": machine_id,
                            "workers": converter.unstructure(value),
                        },
                        tg.cancel_scope,
                    )
        except* ConnectionResetError:
            pass  # the browser went away
    return response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the event stream."""
    router.add_get("/api/events", events)

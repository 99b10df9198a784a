"""The inbox: everything waiting for the signed-in user, across machines, workers and sessions.

* ``GET /api/inbox`` -> ``{"items": [Item, ...]}``, oldest first
* ``GET /api/inbox/stream`` -> Server-Sent Events: ``inbox`` ``{"items": [...]}`` at once
  and on every change (the inbox page; the header badge asks ``GET /api/inbox``), ``error`` once

An item is a pending permission request with where it comes from (machine,
worker, session) and what is asked; answer it with
``POST /api/permissions/{permission_id}/answer``.
"""

from __future__ import annotations

import anyio
from aiohttp import web

from orchestrator.domain.notifications import WaitingPermission, session_url
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.state import BACKEND
from orchestrator.entrypoints.web.streams import EventStream, tracked


def _item(waiting: WaitingPermission) -> dict[str, object]:
    request = waiting.request
    return {
        "kind": "permission",
        "permission_id": request.permission_id,
        "tool": request.tool,
        "description": request.description,
        "asked_at": request.created_at.isoformat(),
        "session_id": request.chat_session_id,
        "worker_id": waiting.worker_id,
        "worker": waiting.worker_label,
        "machine_id": waiting.machine_id,
        "machine": waiting.machine_name,
        "url": session_url(waiting.machine_id, waiting.worker_id, request.chat_session_id),
    }


def _items(found: list[WaitingPermission]) -> dict[str, object]:
    return {"items": [_item(w) for w in found]}


async def inbox(request: web.Request) -> web.Response:
    """``GET /api/inbox``: what waits for the user, oldest first."""
    user = require_user(request)
    return web.json_response(_items(await request.app[BACKEND].list_waiting_permissions(user)))


async def inbox_stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/inbox/stream``: the inbox, live."""
    user = require_user(request)
    stream = await EventStream.open(request)

    async def send(found: list[WaitingPermission]) -> None:
        await stream.send("inbox", _items(found))

    with tracked(request):
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.keepalive)
                source = request.app[BACKEND].watch_waiting_permissions(user)
                tg.start_soon(stream.pump, source, send, tg.cancel_scope)
        except* ConnectionResetError:
            pass  # the browser went away
    return stream.response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the inbox API."""
    router.add_get("/api/inbox", inbox)
    router.add_get("/api/inbox/stream", inbox_stream)

"""The inbox: everything waiting for the signed-in user, across machines, workers and sessions.

* ``GET /api/inbox`` -> ``{"items": [Item, ...], "finished": [Finished, ...]}``: items
  oldest first; finished replies since the user last looked, newest first (at most
  :data:`~orchestrator.domain.notifications.MAX_FINISHED`)
* ``GET /api/inbox/stream`` -> Server-Sent Events: ``inbox`` ``{"items", "finished"}`` at once
  and on every change (the inbox page), ``error`` once
* ``GET /api/inbox/stream?count=1`` -> Server-Sent Events: ``count`` ``{"waiting": n}``, how
  many items wait, at once and when it changes (the header badge on every other page; it
  reads neither the items' details nor the finished replies)
* ``POST /api/inbox/seen {until}`` -> 204: the user looked up to ``until`` (the
  ``finished_at`` of the newest finished reply the page showed); those replies leave the list

An item is a pending permission request (``kind: "permission"``) or question
(``kind: "question"``) with where it comes from (machine, worker, session) and
what is asked; answer it with ``POST /api/permissions/{permission_id}/answer``
or ``POST /api/questions/{question_id}/answer``. Items are what waits for the user
(the header badge counts them); finished replies are news only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from functools import partial
from typing import Any

import anyio
import attrs
from aiohttp import web

from orchestrator.adapters.wire import converter
from orchestrator.domain.ids import ChatSessionId, UserId
from orchestrator.domain.notifications import (
    MAX_FINISHED,
    FinishedReply,
    WaitingPermission,
    parse_seen_until,
    session_url,
)
from orchestrator.domain.ports import ServerBackend
from orchestrator.domain.questions import WaitingQuestion
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import read_body
from orchestrator.entrypoints.web.state import BACKEND
from orchestrator.entrypoints.web.streams import EventStream, tracked


def _origin(
    entry: WaitingPermission | WaitingQuestion | FinishedReply, session_id: ChatSessionId
) -> dict[str, object]:
    """Where an inbox entry comes from, and the chat page that opens its session."""
    return {
        "session_id": session_id,
        "worker_id": entry.worker_id,
        "worker": entry.worker_label,
        "machine_id": entry.machine_id,
        "machine": entry.machine_name,
        "url": session_url(entry.machine_id, entry.worker_id, session_id),
    }


def _item(waiting: WaitingPermission) -> dict[str, object]:
    request = waiting.request
    return {
        "kind": "permission",
        "permission_id": request.permission_id,
        "tool": request.tool,
        "description": request.description,
        # An edit's file and diff (cut to MAX_DIFF_BYTES; diff_size is the whole), else "".
        "file": request.file,
        "diff": request.diff,
        "diff_size": request.diff_size,
        "asked_at": request.created_at.isoformat(),
        **_origin(waiting, request.chat_session_id),
    }


def _question_item(waiting: WaitingQuestion) -> dict[str, object]:
    request = waiting.request
    return {
        "kind": "question",
        "question_id": request.question_id,
        "request": converter.unstructure(request),
        "asked_at": request.created_at.isoformat(),
        **_origin(waiting, request.chat_session_id),
    }


def _finished_item(reply: FinishedReply) -> dict[str, object]:
    return {
        "message_id": reply.message_id,
        "status": reply.status.value,
        "preview": reply.preview,
        "finished_at": reply.finished_at.isoformat(),
        **_origin(reply, reply.chat_session_id),
    }


def _items(
    permissions: list[WaitingPermission],
    questions: list[WaitingQuestion],
    finished: list[FinishedReply],
) -> dict[str, object]:
    items = [_item(w) for w in permissions] + [_question_item(w) for w in questions]
    return {
        # Oldest first; ISO times of one zone sort as text.
        "items": sorted(items, key=lambda item: str(item["asked_at"])),
        "finished": [_finished_item(r) for r in finished],
    }


async def _read(
    backend: ServerBackend, user: UserId
) -> tuple[list[WaitingPermission], list[WaitingQuestion], list[FinishedReply]]:
    permissions = await backend.list_waiting_permissions(user)
    questions = await backend.list_waiting_questions(user)
    return permissions, questions, await backend.list_finished_replies(user, MAX_FINISHED)


async def _follow(
    request: web.Request,
    stream: EventStream,
    *pumps: Callable[[anyio.CancelScope], Coroutine[Any, Any, None]],
) -> web.StreamResponse:
    """Run ``pumps`` beside the keepalives until one ends or the browser goes away."""
    with tracked(request):
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.keepalive)
                for pump in pumps:
                    tg.start_soon(pump, tg.cancel_scope)
        except* ConnectionResetError:
            pass  # the browser went away
    return stream.response


@attrs.define
class _Latest:
    """The newest list of each watch; ``event`` is sent whenever what they render to changes."""

    stream: EventStream
    event: str
    render: Callable[..., object]
    lists: list[list[Any]]
    sent: object = None

    async def send(self) -> None:
        """Send the rendered lists unless the last event already showed exactly this."""
        body = self.render(*self.lists)
        if body != self.sent:  # each watch starts with what the first event already showed
            self.sent = body
            await self.stream.send(self.event, body)

    def _pump(
        self, index: int, watch: AsyncIterator[list[Any]]
    ) -> Callable[[anyio.CancelScope], Coroutine[Any, Any, None]]:
        async def replace(found: list[Any]) -> None:
            self.lists[index] = found
            await self.send()

        return partial(self.stream.pump, watch, replace)

    async def follow(
        self, request: web.Request, *watches: AsyncIterator[list[Any]]
    ) -> web.StreamResponse:
        """Follow ``watches`` (one per list, in order) until one ends or the browser goes away."""
        pumps = [self._pump(index, watch) for index, watch in enumerate(watches)]
        return await _follow(request, self.stream, *pumps)


async def inbox(request: web.Request) -> web.Response:
    """``GET /api/inbox``: what waits for the user, oldest first, and replies since they looked."""
    user = require_user(request)
    return web.json_response(_items(*await _read(request.app[BACKEND], user)))


async def mark_seen(request: web.Request) -> web.Response:
    """``POST /api/inbox/seen {until}``: the finished replies up to ``until`` are seen."""
    user = require_user(request)
    until = parse_seen_until((await read_body(request)).data.get("until"))
    await request.app[BACKEND].mark_inbox_seen(user, until)
    return web.Response(status=204)


async def inbox_stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/inbox/stream[?count=1]``: the inbox, or only how many items wait, live."""
    if request.query.get("count") == "1":
        return await _count_stream(request)
    user = require_user(request)
    stream = await EventStream.open(request)

    backend = request.app[BACKEND]
    # The lists are read once before the first event, then each change resends them all.
    permissions, questions, finished = await _read(backend, user)
    lists: list[list[Any]] = [permissions, questions, finished]
    latest = _Latest(stream, "inbox", _items, lists)
    return await latest.follow(
        request,
        backend.watch_waiting_permissions(user),
        backend.watch_waiting_questions(user),
        backend.watch_finished_replies(user, MAX_FINISHED),
    )


def _count(permissions: list[WaitingPermission], questions: list[WaitingQuestion]) -> object:
    return {"waiting": len(permissions) + len(questions)}


async def _count_stream(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    stream = await EventStream.open(request)
    backend = request.app[BACKEND]
    # Both counts are read before the first event, so it never shows half of them.
    waiting: list[list[Any]] = [
        await backend.list_waiting_permissions(user),
        await backend.list_waiting_questions(user),
    ]
    latest = _Latest(stream, "count", _count, waiting)
    await latest.send()
    return await latest.follow(
        request,
        backend.watch_waiting_permissions(user),
        backend.watch_waiting_questions(user),
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the inbox API."""
    router.add_get("/api/inbox", inbox)
    router.add_get("/api/inbox/stream", inbox_stream)
    router.add_post("/api/inbox/seen", mark_seen)

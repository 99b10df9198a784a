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

from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

import anyio
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

    sent: object = None

    async def send() -> None:
        nonlocal sent
        items = _items(permissions, questions, finished)
        if items != sent:  # each watch starts with what the first event already showed
            sent = items
            await stream.send("inbox", items)

    async def send_permissions(found: list[WaitingPermission]) -> None:
        nonlocal permissions
        permissions = found
        await send()

    async def send_questions(found: list[WaitingQuestion]) -> None:
        nonlocal questions
        questions = found
        await send()

    async def send_finished(found: list[FinishedReply]) -> None:
        nonlocal finished
        finished = found
        await send()

    return await _follow(
        request,
        stream,
        partial(stream.pump, backend.watch_waiting_permissions(user), send_permissions),
        partial(stream.pump, backend.watch_waiting_questions(user), send_questions),
        partial(stream.pump, backend.watch_finished_replies(user, MAX_FINISHED), send_finished),
    )


async def _count_stream(request: web.Request) -> web.StreamResponse:
    user = require_user(request)
    stream = await EventStream.open(request)
    backend = request.app[BACKEND]
    waiting = {"permissions": 0, "questions": 0}
    sent: int | None = None

    async def send() -> None:
        nonlocal sent
        count = sum(waiting.values())
        if count != sent:  # the two watches each start with a count already sent
            sent = count
            await stream.send("count", {"waiting": count})

    async def send_permissions(found: list[WaitingPermission]) -> None:
        waiting["permissions"] = len(found)
        await send()

    async def send_questions(found: list[WaitingQuestion]) -> None:
        waiting["questions"] = len(found)
        await send()

    # Both counts are read before the first event, so it never shows half of them.
    waiting["permissions"] = len(await backend.list_waiting_permissions(user))
    waiting["questions"] = len(await backend.list_waiting_questions(user))
    await send()
    return await _follow(
        request,
        stream,
        partial(stream.pump, backend.watch_waiting_permissions(user), send_permissions),
        partial(stream.pump, backend.watch_waiting_questions(user), send_questions),
    )


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the inbox API."""
    router.add_get("/api/inbox", inbox)
    router.add_get("/api/inbox/stream", inbox_stream)
    router.add_post("/api/inbox/seen", mark_seen)

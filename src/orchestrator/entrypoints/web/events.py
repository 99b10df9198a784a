"""``GET /api/events``: live updates for the browser as Server-Sent Events.

Events (``data`` is JSON):

* ``machines`` -- ``{"machines": [MachineSummary, ...]}``, at once and on every change;
* ``workers`` -- ``{"machine_id": ..., "workers": [Worker, ...]}`` when the
  request names ``?machine_id=``, at once and on every change;
* ``sessions`` -- ``{"worker_id": ..., "sessions": [ChatSession, ...]}`` when
  the request names ``?worker_id=``, at once and on every change;
* ``jobs`` -- ``{"jobs": [Job, ...]}`` when the request names ``?jobs=1`` (and
  the backend has scheduled jobs), at once and on every change;
* ``turns`` -- ``{"open": [message_id, ...]}`` with ``?jobs=1``: the user's
  unfinished messages, at once and whenever one starts or finishes (a job run's
  status is its reply's, so the jobs page rereads its runs then instead of polling);
* ``error`` -- ``{"error": ..., "type": ...}`` once, then the stream ends.

A comment line every few seconds (:data:`~.streams.KEEPALIVE_SECONDS`) keeps
proxies from closing an idle stream and finds clients that went away.
"""

from __future__ import annotations

import anyio
from aiohttp import web

from orchestrator.adapters.wire import converter
from orchestrator.domain.chat import ChatSession
from orchestrator.domain.ids import MachineId, MessageId, WorkerId
from orchestrator.domain.jobs import Job
from orchestrator.domain.model import MachineSummary, Worker
from orchestrator.domain.notifications import OpenTurn
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.jobs_api import job_backend
from orchestrator.entrypoints.web.payload import parse_id
from orchestrator.entrypoints.web.state import BACKEND
from orchestrator.entrypoints.web.streams import EventStream, tracked


async def events(request: web.Request) -> web.StreamResponse:
    """``GET /api/events[?machine_id=][&worker_id=][&jobs=1]``: what the pages show, live."""
    user = require_user(request)
    backend = request.app[BACKEND]
    machine_id: MachineId | None = None
    worker_id: WorkerId | None = None
    # Unknown or foreign IDs are 404 before the stream starts.
    if "machine_id" in request.query:
        machine_id = MachineId(parse_id(request.query["machine_id"], "machine"))
        await backend.get_machine(user, machine_id)
    if "worker_id" in request.query:
        worker_id = WorkerId(parse_id(request.query["worker_id"], "worker"))
        await backend.list_sessions(user, worker_id)

    jobs_backend = job_backend(request) if request.query.get("jobs") == "1" else None

    stream = await EventStream.open(request)

    async def machines(value: list[MachineSummary]) -> None:
        await stream.send("machines", {"machines": converter.unstructure(value)})

    async def workers(value: list[Worker]) -> None:
        data = {"machine_id": machine_id, "workers": converter.unstructure(value)}
        await stream.send("workers", data)

    async def sessions(value: list[ChatSession]) -> None:
        data = {"worker_id": worker_id, "sessions": converter.unstructure(value)}
        await stream.send("sessions", data)

    async def jobs(value: list[Job]) -> None:
        await stream.send("jobs", {"jobs": converter.unstructure(value)})

    open_turns: list[MessageId] | None = None

    async def turns(value: list[OpenTurn]) -> None:
        nonlocal open_turns
        mine = sorted(t.message.message_id for t in value if t.user_id == user)
        if mine != open_turns:  # other users' turns move the server-wide watch too
            open_turns = mine
            await stream.send("turns", {"open": mine})

    with tracked(request):
        try:
            async with anyio.create_task_group() as tg:
                done = tg.cancel_scope
                tg.start_soon(stream.keepalive)
                tg.start_soon(stream.pump, backend.watch_machines(user), machines, done)
                if machine_id is not None:
                    source = backend.watch_workers(user, machine_id)
                    tg.start_soon(stream.pump, source, workers, done)
                if worker_id is not None:
                    tg.start_soon(
                        stream.pump, backend.watch_sessions(user, worker_id), sessions, done
                    )
                if jobs_backend is not None:
                    tg.start_soon(stream.pump, jobs_backend.watch_jobs(user), jobs, done)
                    tg.start_soon(stream.pump, backend.watch_open_turns(), turns, done)
        except* ConnectionResetError:
            pass  # the browser went away
    return stream.response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the event stream."""
    router.add_get("/api/events", events)

"""The browser's API for scheduled jobs: create, edit, pause, resume, delete, run now, history.

Same conventions as :mod:`.user_api`: a session cookie on every call, the CSRF
token on every state change, someone else's IDs are 404, one-sentence errors.
Records as in :mod:`orchestrator.adapters.wire`: times are ISO 8601 in
UTC (``next_run_at``: the browser shows it in the user's zone).

* ``GET /api/jobs`` -> ``{"jobs": [Job, ...]}`` (oldest first)
* ``POST /api/jobs {worker_id, name, model, prompt, cron, timezone?, session_mode?,
  enabled?}`` -> 201 ``{"job": Job}``
* ``GET /api/jobs/{id}`` -> ``{"job": Job}``; ``PUT`` (same body as POST) -> ``{"job": Job}``;
  ``DELETE`` -> 204
* ``POST /api/jobs/{id}/pause`` and ``/resume`` -> ``{"job": Job}``
* ``POST /api/jobs/{id}/run`` -> 201 ``{"run": JobRun}`` ("Run now"; the schedule stays)
* ``GET /api/jobs/{id}/runs`` -> ``{"runs": [JobRun, ...]}`` (newest first)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from aiohttp import web

from orchestrator.application import jobs
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import WorkerId
from orchestrator.domain.jobs import JobDraft, SessionMode
from orchestrator.domain.ports import JobUserBackend
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.owned import owned
from orchestrator.entrypoints.web.payload import (
    JOB,
    Body,
    list_response,
    parse_id,
    read_body,
    record_response,
)
from orchestrator.entrypoints.web.state import BACKEND, CLOCK, SETTINGS

BAD_SESSION_MODE: Final = "The field 'session_mode' must be 'new_session' or 'same_session'."
BAD_ENABLED: Final = "The field 'enabled' must be true or false."


def job_backend(request: web.Request) -> JobUserBackend:
    """The app's backend, seen as the owner's side of jobs."""
    return request.app[BACKEND]


def _minimum(request: web.Request) -> timedelta:
    return request.app[SETTINGS].job_minimum_interval


def _draft(body: Body) -> JobDraft:
    """A draft from the body; ``application.jobs`` validates its values."""
    worker_id = WorkerId(parse_id(body.string("worker_id"), "worker"))
    mode = body.optional_string("session_mode") or SessionMode.NEW_SESSION.value
    if mode not in {m.value for m in SessionMode}:
        raise InvalidInput(BAD_SESSION_MODE)
    enabled = body.data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput(BAD_ENABLED)
    return JobDraft(
        worker_id=worker_id,
        name=body.string("name"),
        model=body.string("model"),
        prompt=body.string("prompt"),
        cron=body.string("cron"),
        timezone=body.optional_string("timezone") or "UTC",
        session_mode=SessionMode(mode),
        enabled=enabled,
    )


async def list_jobs(request: web.Request) -> web.Response:
    """``GET /api/jobs[?cursor=…][&limit=N]``: every job, or with either one page, oldest first."""
    user, backend = require_user(request), job_backend(request)
    return await list_response(
        request,
        "jobs",
        lambda: backend.list_jobs(user),
        lambda cursor, limit: backend.list_jobs_page(user, cursor, limit),
    )


async def create_job(request: web.Request) -> web.Response:
    """``POST /api/jobs``."""
    user = require_user(request)
    backend = job_backend(request)
    draft = _draft(await read_body(request))
    job = await jobs.create_job(backend, request.app[CLOCK], user, draft, _minimum(request))
    return record_response("job", job, status=201)


#: ``GET /api/jobs/{job_id}``.
get_job = owned("job", JOB, lambda backend: backend.get_job)


async def update_job(request: web.Request) -> web.Response:
    """``PUT /api/jobs/{job_id}``: replace the job's settings."""
    user = require_user(request)
    backend = job_backend(request)
    job_id = JOB.of(request)
    await backend.get_job(user, job_id)  # 404 before the body is judged
    draft = _draft(await read_body(request))
    job = await jobs.update_job(backend, request.app[CLOCK], user, job_id, draft, _minimum(request))
    return record_response("job", job)


async def delete_job(request: web.Request) -> web.Response:
    """``DELETE /api/jobs/{job_id}``: the job and its history (its sessions stay)."""
    await job_backend(request).delete_job(require_user(request), JOB.of(request))
    return web.Response(status=204)


async def _set_enabled(request: web.Request, enabled: bool) -> web.Response:
    backend = job_backend(request)
    job = await jobs.set_job_enabled(
        backend, request.app[CLOCK], require_user(request), JOB.of(request), enabled
    )
    return record_response("job", job)


async def pause_job(request: web.Request) -> web.Response:
    """``POST /api/jobs/{job_id}/pause``."""
    return await _set_enabled(request, False)


async def resume_job(request: web.Request) -> web.Response:
    """``POST /api/jobs/{job_id}/resume``: the next run is the first due time from now."""
    return await _set_enabled(request, True)


#: ``POST /api/jobs/{job_id}/run``: a run at once, the schedule unchanged.
run_job_now = owned("run", JOB, lambda backend: backend.run_job_now, status=201)

#: ``GET /api/jobs/{job_id}/runs``: newest first, each with its reply's status.
list_job_runs = owned("runs", JOB, lambda backend: backend.list_job_runs)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the jobs API."""
    router.add_put("/api/jobs/{job_id}", update_job)
    router.add_delete("/api/jobs/{job_id}", delete_job)
    router.add_post("/api/jobs/{job_id}/pause", pause_job)
    router.add_post("/api/jobs/{job_id}/resume", resume_job)

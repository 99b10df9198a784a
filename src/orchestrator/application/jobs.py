"""Use cases for scheduled jobs, and the scheduler that starts their runs.

Cron arithmetic happens here, in Python, for every backend: the backend only
stores ``next_run_at`` and starts a slot with a compare-and-set, so a slot
runs exactly once however many schedulers look at it (several server
processes, a restart in the middle).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import anyio

from orchestrator.domain.chat import validate_message
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.ids import JobId, UserId
from orchestrator.domain.jobs import (
    Job,
    JobDraft,
    JobRun,
    check_interval,
    first_run_after,
    next_due,
    parse_cron,
    parse_timezone,
)
from orchestrator.domain.model import validate_name
from orchestrator.domain.ports import Clock, JobSchedulerBackend, JobUserBackend

log = logging.getLogger(__name__)

#: Schedules may not run more often than this by default.
DEFAULT_MINIMUM_INTERVAL = timedelta(minutes=5)
#: The scheduler looks for due jobs at least this often.
SCHEDULER_TICK = timedelta(seconds=15)


def validate_draft(draft: JobDraft, now: datetime, minimum_interval: timedelta) -> JobDraft:
    """The draft with a clean name and cron, or one sentence about what is wrong."""
    cron = parse_cron(draft.cron)
    parse_timezone(draft.timezone)
    check_interval(cron, draft.timezone, minimum_interval, now)
    first_run_after(cron, draft.timezone, now)  # refuses schedules that never come due
    validate_message(draft.prompt)
    return JobDraft(
        worker_id=draft.worker_id,
        name=validate_name(draft.name, "Job name"),
        model=draft.model,
        prompt=draft.prompt,
        cron=cron,
        timezone=draft.timezone,
        session_mode=draft.session_mode,
        enabled=draft.enabled,
    )


def _scheduled(
    draft: JobDraft, clock: Clock, minimum_interval: timedelta
) -> tuple[JobDraft, datetime | None]:
    """The checked draft and its first due time from now (None while it is paused)."""
    now = clock.now()
    clean = validate_draft(draft, now, minimum_interval)
    return clean, first_run_after(clean.cron, clean.timezone, now) if clean.enabled else None


async def create_job(
    backend: JobUserBackend,
    clock: Clock,
    user: UserId,
    draft: JobDraft,
    minimum_interval: timedelta = DEFAULT_MINIMUM_INTERVAL,
) -> Job:
    """Create a job; its first run is the first due time from now."""
    return await backend.create_job(user, *_scheduled(draft, clock, minimum_interval))


async def update_job(
    backend: JobUserBackend,
    clock: Clock,
    user: UserId,
    job_id: JobId,
    draft: JobDraft,
    minimum_interval: timedelta = DEFAULT_MINIMUM_INTERVAL,
) -> Job:
    """Replace a job's settings; the next run is recomputed from now."""
    return await backend.update_job(user, job_id, *_scheduled(draft, clock, minimum_interval))


async def set_job_enabled(
    backend: JobUserBackend, clock: Clock, user: UserId, job_id: JobId, enabled: bool
) -> Job:
    """Pause or resume a job; resuming schedules the first due time from now."""
    job = await backend.get_job(user, job_id)
    next_run = first_run_after(job.cron, job.timezone, clock.now()) if enabled else None
    return await backend.set_job_enabled(user, job_id, enabled, next_run)


async def run_due_jobs(backend: JobSchedulerBackend, clock: Clock) -> list[JobRun]:
    """Start one run for every job that is due now; missed slots collapse into that one."""
    now = clock.now()
    started: list[JobRun] = []
    for job in await backend.list_due_jobs(now):
        if job.next_run_at is None:
            continue
        following = next_due(job.cron, job.timezone, now)
        try:
            run = await backend.start_job_run(job.job_id, job.next_run_at, following)
        except OrchestratorError as exc:
            log.warning("job %s could not start: %s", job.job_id, exc)
            continue
        if run is not None:
            started.append(run)
    return started


async def seconds_until_next_look(
    backend: JobSchedulerBackend, clock: Clock, tick: timedelta = SCHEDULER_TICK
) -> float:
    """How long the scheduler may sleep: until the soonest due time, ``tick`` at most.

    Waking at the due time (not up to a tick later) keeps a job's shown next run
    from sitting in the past while it waits for the scheduler's next look.
    """
    now = clock.now()
    soonest = await backend.list_due_jobs(now + tick, limit=1)
    due = soonest[0].next_run_at if soonest else None
    if due is None or due <= now:
        # Nothing soon, or one still due after run_due_jobs (it could not start): retry later.
        return tick.total_seconds()
    return min((due - now).total_seconds(), tick.total_seconds())


async def scheduler_loop(
    backend: JobSchedulerBackend, clock: Clock, tick: timedelta = SCHEDULER_TICK
) -> None:
    """Start due runs forever, waking at the next due time (and at least every ``tick``)."""
    while True:
        delay = tick.total_seconds()
        try:
            await run_due_jobs(backend, clock)
            delay = await seconds_until_next_look(backend, clock, tick)
        except OrchestratorError as exc:
            log.warning("the scheduler could not look for due jobs: %s", exc)
        await anyio.sleep(delay)

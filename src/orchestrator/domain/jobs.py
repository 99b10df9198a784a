"""Scheduled jobs: a prompt sent to a worker on a cron schedule.

Each due time produces one *run*: a user message in a chat session of the
job's worker (a new session per run, or always the same one), which the
machine answers like any other message. A run's outcome is its reply's.

Missed runs: a job whose due time passed while nothing was running (server
down, clock jumped forward) runs **once** when the scheduler next looks, not
once per missed slot; its next run is then the first due time after now.
A clock that jumps backwards only delays the next run.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from cronsim import CronSim, CronSimError

from orchestrator.domain.errors import Conflict, InvalidInput
from orchestrator.domain.ids import ChatSessionId, JobId, JobRunId, MessageId, UserId, WorkerId

MAX_CRON_LENGTH = 200
#: How many upcoming due times are checked against the minimum interval.
_INTERVAL_SAMPLES = 100
CRON_FIELDS = ("minute", "hour", "day of month", "month", "day of week")
CRON_HELP = "A cron expression has five fields: minute hour day-of-month month day-of-week."


class SessionMode(enum.StrEnum):
    #: Every run opens a new chat session.
    NEW_SESSION = "new_session"
    #: Every run appends to one chat session (created by the first run).
    SAME_SESSION = "same_session"


class RunStatus(enum.StrEnum):
    PENDING = "pending"  # message queued, the machine has not answered yet
    RUNNING = "running"  # the reply is being written
    DONE = "done"
    FAILED = "failed"


@attrs.frozen
class Job:
    job_id: JobId
    user_id: UserId
    worker_id: WorkerId | None
    name: str
    model: str
    prompt: str
    cron: str
    timezone: str
    enabled: bool
    session_mode: SessionMode
    created_at: datetime
    next_run_at: datetime | None
    #: The session that SAME_SESSION runs append to, once the first run made it.
    chat_session_id: ChatSessionId | None = None
    #: Why the job is paused when the system paused it (e.g. its worker was removed).
    paused_reason: str | None = None


@attrs.frozen
class JobDraft:
    """What the owner fills in for a job; validated by ``application.jobs``."""

    worker_id: WorkerId
    name: str
    model: str
    prompt: str
    cron: str
    timezone: str = "UTC"
    session_mode: SessionMode = SessionMode.NEW_SESSION
    enabled: bool = True


@attrs.frozen
class JobRun:
    run_id: JobRunId
    job_id: JobId
    #: The due time this run is for (unique per job: a slot never runs twice).
    scheduled_for: datetime
    created_at: datetime
    status: RunStatus
    chat_session_id: ChatSessionId | None = None
    message_id: MessageId | None = None
    finished_at: datetime | None = None
    error: str | None = None


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``Europe/Berlin``), or one clear sentence."""
    try:
        if not name or len(name) > 64 or not re.fullmatch(r"[A-Za-z0-9_+\-/]+", name):
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(
            f"Unknown time zone {name!r}. Use an IANA name such as 'UTC' or 'Europe/Berlin'."
        ) from exc


def _field_of(message: str) -> str | None:
    """Which field cronsim's message ("Bad day-of-week", "Bad minute") is about."""
    lowered = message.lower().replace("-", " ")
    for field in sorted(CRON_FIELDS, key=len, reverse=True):  # "day of week" before "day"
        if field in lowered:
            return field
    return None


def parse_cron(expression: str) -> str:
    """``expression`` with single spaces if it is a valid 5-field cron; else says where not."""
    cleaned = " ".join(expression.split())
    if not cleaned:
        raise InvalidInput(f"The schedule is empty. {CRON_HELP}")
    if len(cleaned) > MAX_CRON_LENGTH:
        raise InvalidInput(f"The schedule must be at most {MAX_CRON_LENGTH} characters.")
    fields = cleaned.split(" ")
    if len(fields) != len(CRON_FIELDS):
        raise InvalidInput(f"The schedule {cleaned!r} has {len(fields)} fields. {CRON_HELP}")
    try:
        CronSim(cleaned, datetime(2000, 1, 1))
    except CronSimError as exc:
        field = _field_of(str(exc))
        if field is None:
            raise InvalidInput(
                f"The schedule {cleaned!r} is not valid: {exc}. {CRON_HELP}"
            ) from exc
        value = fields[CRON_FIELDS.index(field)]
        raise InvalidInput(
            f"The {field} field {value!r} of the schedule {cleaned!r} is not valid. {CRON_HELP}"
        ) from exc
    return cleaned


def next_due(cron: str, timezone: str, after: datetime) -> datetime | None:
    """The first due time strictly after ``after`` (UTC), or None if there is none."""
    zone = parse_timezone(timezone)
    local = after.astimezone(zone).replace(second=0, microsecond=0)
    try:
        found = next(iter(CronSim(cron, local)))
    except (StopIteration, CronSimError):  # e.g. "0 0 30 2 *" never comes due
        return None
    return found.astimezone(after.tzinfo)


def check_interval(cron: str, timezone: str, minimum: timedelta, now: datetime) -> None:
    """Refuse schedules that would run more often than ``minimum`` apart."""
    zone = parse_timezone(timezone)
    times = CronSim(cron, now.astimezone(zone).replace(second=0, microsecond=0))
    previous: datetime | None = None
    for _ in range(_INTERVAL_SAMPLES):
        try:
            current = next(times)
        except StopIteration:
            return
        if previous is not None and current - previous < minimum:
            minutes = minimum.total_seconds() / 60
            raise InvalidInput(
                f"The schedule {cron!r} runs more often than the minimum of one run every "
                f"{minutes:g} minutes. Pick a less frequent schedule."
            )
        previous = current


def first_run_after(job_cron: str, timezone: str, now: datetime) -> datetime:
    """The next due time for a new or re-enabled job; refuses schedules that never fire."""
    due = next_due(job_cron, timezone, now)
    if due is None:
        raise InvalidInput(f"The schedule {job_cron!r} never comes due. Check its day and month.")
    return due


NO_JOB = "No such job."
#: Why the system paused a job whose worker was removed (or whose machine was deleted).
WORKER_REMOVED = "Its worker was removed."
#: How many runs ``list_job_runs`` returns at most.
JOB_RUNS_LIMIT = 50


def run_outcome(
    user_status: str | None, reply_status: str | None, reply_error: str | None
) -> tuple[RunStatus, str | None]:
    """A run's status from its user message's and its reply's statuses (chat's values).

    The reply decides once it exists (streaming: running; completed: done;
    failed, interrupted or aborted: failed with its error); before that the
    user message does (pending: pending; processing: running).
    """
    if reply_status is not None:
        if reply_status == "streaming":
            return RunStatus.RUNNING, None
        if reply_status == "completed":
            return RunStatus.DONE, None
        return RunStatus.FAILED, reply_error or f"The reply was {reply_status}."
    if user_status == "pending":
        return RunStatus.PENDING, None
    if user_status == "processing":
        return RunStatus.RUNNING, None
    if user_status is None:
        return RunStatus.FAILED, "The run's chat session no longer exists."
    return RunStatus.DONE, None


NO_WORKER_FOR_JOB = "This job has no worker. Edit it and pick one."


def new_job(
    job_id: JobId, user: UserId, draft: JobDraft, next_run_at: datetime | None, now: datetime
) -> Job:
    """A job as its owner drafted it; it is on only if it has a next run."""
    on = draft.enabled and next_run_at is not None
    drafted = attrs.asdict(draft, recurse=False) | {"enabled": on}  # every draft field is a Job's
    return Job(
        job_id=job_id,
        user_id=user,
        created_at=now,
        next_run_at=next_run_at if on else None,
        **drafted,
    )


def edit_job(old: Job, draft: JobDraft, next_run_at: datetime | None) -> Job:
    """The job redrafted: a pause by the system ends; a new worker or model starts a new session."""
    same_target = (old.worker_id, old.model) == (draft.worker_id, draft.model)
    changed = new_job(old.job_id, old.user_id, draft, next_run_at, old.created_at)
    chat_session_id = old.chat_session_id if same_target else None
    return attrs.evolve(changed, chat_session_id=chat_session_id)


def job_worker(job: Job) -> WorkerId:
    """The worker the job runs on; a job whose worker was removed cannot run."""
    if job.worker_id is None:
        raise Conflict(NO_WORKER_FOR_JOB)
    return job.worker_id


def enable_job(job: Job, enabled: bool, next_run_at: datetime | None) -> Job:
    """The job switched on (from its next run) or off by its owner."""
    if enabled:
        job_worker(job)
    on = enabled and next_run_at is not None
    return attrs.evolve(
        job, enabled=on, next_run_at=next_run_at if on else None, paused_reason=None
    )

"""Scheduled jobs for :class:`~orchestrator.testing.fakes.InMemoryBackend`.

Same rules as the SQLite backend (``adapters/embedded/_jobs.py``); the
contract suite in ``tests/contract/test_job_contract.py`` holds both to them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from datetime import datetime
from functools import partial
from typing import TypeVar

import attrs

from orchestrator.domain import jobs as job_rules
from orchestrator.domain.chat import (
    check_model,
)
from orchestrator.domain.errors import Conflict, NotFound, OrchestratorError
from orchestrator.domain.ids import ChatSessionId, JobId, JobRunId, MessageId, UserId, WorkerId
from orchestrator.domain.job_runs import start_run_session
from orchestrator.domain.jobs import Job, JobDraft, JobRun, RunStatus
from orchestrator.domain.paging import (
    JOBS,
    LIST_PAGE,
    Page,
    decode_cursor,
    job_size,
    make_page,
    page_from_list,
    page_limit,
)
from orchestrator.testing._state_fake import FakeState

T = TypeVar("T")


def _job_id(job: Job) -> str:
    return job.job_id


class JobFake(FakeState):
    """The :class:`~orchestrator.domain.ports.JobUserBackend` and ``JobSchedulerBackend``."""

    # --- helpers ----------------------------------------------------------------------

    def _owned_job(self, user: UserId, job_id: JobId) -> Job:
        found = self.jobs.get(job_id)
        if found is None or found.user_id != user:
            raise NotFound(job_rules.NO_JOB)
        return found

    def _derived(self, run: JobRun) -> JobRun:
        """``run`` with its status read from its messages (unless already final)."""
        if run.message_id is None or run.run_id in self.final_runs:
            return run
        message = self.chat_messages.get(run.message_id)
        replies = [m for m in self.chat_messages.values() if m.reply_to == run.message_id]
        reply = max(replies, key=lambda m: m.timestamp) if replies else None
        status, error = job_rules.run_outcome(
            None if message is None else message.status.value,
            None if reply is None else reply.status.value,
            None if reply is None else reply.error,
        )
        return attrs.evolve(run, status=status, error=error)

    def _pause_jobs_of(self, worker_ids: Iterable[WorkerId]) -> None:
        """Before workers are deleted: freeze their jobs' runs and pause the jobs."""
        gone = set(worker_ids)
        for job in list(self.jobs.values()):
            if job.worker_id not in gone:
                continue
            for run in list(self.job_runs.values()):
                if run.job_id == job.job_id:
                    self.job_runs[run.run_id] = self._derived(run)
                    self.final_runs.add(run.run_id)
            self.jobs[job.job_id] = attrs.evolve(
                job,
                enabled=False,
                next_run_at=None,
                worker_id=None,
                chat_session_id=None,
                paused_reason=job_rules.WORKER_REMOVED,
            )

    def _start_run(
        self, job: Job, scheduled_for: datetime, now: datetime | None = None
    ) -> JobRun | None:
        if any(
            r.job_id == job.job_id and r.scheduled_for == scheduled_for
            for r in self.job_runs.values()
        ):
            return None
        now = now or self._now()
        run_id = JobRunId(self.ids.new_id("job_run"))
        try:
            assert job.worker_id is not None
            worker = self._owned_worker(job.user_id, job.worker_id)
            last = self.chat_sessions.get(job.chat_session_id) if job.chat_session_id else None
            started = start_run_session(
                job,
                worker,
                last,
                lambda: ChatSessionId(self.ids.new_id("chat_session")),
                lambda: MessageId(self.ids.new_id("message")),
                now,
            )
        except OrchestratorError as exc:
            run = JobRun(
                run_id,
                job.job_id,
                scheduled_for,
                now,
                RunStatus.FAILED,
                finished_at=now,
                error=str(exc),
            )
        else:
            self._save(started.session)
            self._save(started.message)
            self.jobs[job.job_id] = started.job
            run = JobRun(
                run_id,
                job.job_id,
                scheduled_for,
                now,
                RunStatus.PENDING,
                started.session.chat_session_id,
                started.message.message_id,
            )
        self.job_runs[run_id] = run
        return self._derived(run)

    def _check_draft_worker(self, user: UserId, draft: JobDraft) -> None:
        check_model(self._owned_worker(user, draft.worker_id), draft.model)

    # --- the owner's side -------------------------------------------------------------

    async def create_job(self, user: UserId, draft: JobDraft, next_run_at: datetime | None) -> Job:
        self._check_draft_worker(user, draft)
        job_id = JobId(self.ids.new_id("job"))
        return await self._save_job(
            job_rules.new_job(job_id, user, draft, next_run_at, self._now())
        )

    async def update_job(
        self, user: UserId, job_id: JobId, draft: JobDraft, next_run_at: datetime | None
    ) -> Job:
        old = self._owned_job(user, job_id)
        self._check_draft_worker(user, draft)
        return await self._save_job(job_rules.edit_job(old, draft, next_run_at))

    async def set_job_enabled(
        self, user: UserId, job_id: JobId, enabled: bool, next_run_at: datetime | None
    ) -> Job:
        job = self._owned_job(user, job_id)
        return await self._save_job(job_rules.enable_job(job, enabled, next_run_at))

    async def _save_job(self, job: Job) -> Job:
        self.jobs[job.job_id] = job
        await self._commit()
        return job

    async def delete_job(self, user: UserId, job_id: JobId) -> None:
        self._owned_job(user, job_id)
        del self.jobs[job_id]
        for run in [r for r in self.job_runs.values() if r.job_id == job_id]:
            del self.job_runs[run.run_id]
            self.final_runs.discard(run.run_id)
        await self._commit()

    async def get_job(self, user: UserId, job_id: JobId) -> Job:
        return self._owned_job(user, job_id)

    async def list_jobs(self, user: UserId) -> list[Job]:
        mine = [j for j in self.jobs.values() if j.user_id == user]
        return sorted(mine, key=lambda j: j.created_at)

    async def list_jobs_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[Job]:
        count = page_limit(limit, LIST_PAGE)
        after = decode_cursor(cursor, JOBS, user)
        found = await self.list_jobs(user)
        items, more = page_from_list(found, after, count, job_size, _job_id)
        return make_page(items, more, JOBS, user, _job_id)

    async def list_job_runs(
        self, user: UserId, job_id: JobId, limit: int = job_rules.JOB_RUNS_LIMIT
    ) -> list[JobRun]:
        self._owned_job(user, job_id)
        mine = [r for r in reversed(self.job_runs.values()) if r.job_id == job_id]
        mine.sort(key=lambda r: r.created_at, reverse=True)
        found = mine[: max(0, min(limit, job_rules.JOB_RUNS_LIMIT))]
        return [self._derived(run) for run in found]

    async def run_job_now(self, user: UserId, job_id: JobId) -> JobRun:
        job = self._owned_job(user, job_id)
        job_rules.job_worker(job)
        now = self._now()
        run = self._start_run(job, now, now)
        if run is None:
            raise Conflict("This job has just been started. Try again in a moment.")
        await self._commit()
        return run

    def watch_jobs(self, user: UserId) -> AsyncGenerator[list[Job], None]:
        return self._watch(partial(self.list_jobs, user))

    # --- the scheduler's side -------------------------------------------------------

    async def list_due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        due = [
            j
            for j in self.jobs.values()
            if j.enabled and j.next_run_at is not None and j.next_run_at <= now
        ]
        due.sort(key=lambda j: j.next_run_at or now)
        return due[: max(0, limit)]

    async def start_job_run(
        self, job_id: JobId, scheduled_for: datetime, next_run_at: datetime | None
    ) -> JobRun | None:
        job = self.jobs.get(job_id)
        if job is None or not job.enabled or job.next_run_at != scheduled_for:
            return None
        run = self._start_run(job, scheduled_for)
        self.jobs[job_id] = attrs.evolve(
            self.jobs[job_id], next_run_at=next_run_at, enabled=next_run_at is not None
        )
        await self._commit()
        return run

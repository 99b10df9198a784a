"""Scheduled jobs on the embedded backend: the owner's side and the scheduler's.

A run is started in one ``BEGIN IMMEDIATE`` transaction: the compare-and-set
on ``next_run_at``, the run row (``UNIQUE (job_id, scheduled_for)`` backs the
compare-and-set up), the chat session and the user message, and the move to
the next due time. A run's status is read from its messages, so nothing has to
follow the machine's progress. Change-feed topic: ``("jobs", user_id)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator, Iterable
from datetime import datetime

import aiosqlite

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._chat import touch_session
from orchestrator.adapters.embedded._machine_side import NO_WORKER, OWNED_WORKER, MachineSide
from orchestrator.adapters.embedded._paging import keyset_start
from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.records import from_row
from orchestrator.domain.chat import check_model
from orchestrator.domain.errors import Conflict, OrchestratorError
from orchestrator.domain.ids import ChatSessionId, JobId, MessageId, UserId
from orchestrator.domain.job_runs import start_run_session
from orchestrator.domain.jobs import (
    JOB_RUNS_LIMIT,
    NO_JOB,
    WORKER_REMOVED,
    Job,
    JobDraft,
    JobRun,
    RunStatus,
    edit_job,
    enable_job,
    job_worker,
    new_job,
    run_outcome,
)
from orchestrator.domain.paging import (
    JOBS,
    LIST_PAGE,
    Page,
    cut_page,
    decode_cursor,
    job_size,
    make_page,
    page_limit,
)


def topic(user_id: str) -> tuple[str, str]:
    return ("jobs", user_id)


def job(row: aiosqlite.Row) -> Job:
    return from_row(row, Job)


async def _run(tx: Tx, row: aiosqlite.Row) -> JobRun:
    """The run of ``row``, its status read from its messages unless stored."""
    message_id, status, error = row["message_id"], row["status"], row["error"]
    if status is None:
        user_row = await tx.one("SELECT status FROM chat_messages WHERE message_id = ?", message_id)
        reply = await tx.one(
            "SELECT status, error FROM chat_messages WHERE reply_to = ?"
            " ORDER BY timestamp DESC, rowid DESC LIMIT 1",
            message_id,
        )
        derived, error = run_outcome(
            None if user_row is None else user_row["status"],
            None if reply is None else reply["status"],
            None if reply is None else reply["error"],
        )
    else:
        derived = RunStatus(status)
    return from_row(row, JobRun, status=derived, error=error)


async def pause_jobs_of_workers(tx: Tx, worker_ids: Iterable[str]) -> None:
    """Before workers are deleted: freeze their jobs' run statuses and pause the jobs."""
    for worker_id in worker_ids:
        found = await tx.all("SELECT job_id, user_id FROM jobs WHERE worker_id = ?", worker_id)
        for job_row in found:
            runs = await tx.all(
                "SELECT * FROM job_runs WHERE job_id = ? AND status IS NULL", job_row["job_id"]
            )
            for run_row in runs:
                frozen = await _run(tx, run_row)
                await tx.run(
                    "UPDATE job_runs SET status = ?, error = ? WHERE run_id = ?",
                    frozen.status.value,
                    frozen.error,
                    frozen.run_id,
                )
            tx.touch(topic(job_row["user_id"]))
        await tx.run(
            "UPDATE jobs SET enabled = 0, next_run_at = NULL, worker_id = NULL,"
            " chat_session_id = NULL, paused_reason = ? WHERE worker_id = ?",
            WORKER_REMOVED,
            worker_id,
        )


async def _save_job(tx: Tx, saved: Job) -> None:
    """Write a job record (new or changed) back to its row; wake its owner's job list."""
    values = {
        "job_id": saved.job_id,
        "user_id": saved.user_id,
        "worker_id": saved.worker_id,
        "name": saved.name,
        "model": saved.model,
        "prompt": saved.prompt,
        "cron": saved.cron,
        "timezone": saved.timezone,
        "enabled": int(saved.enabled),
        "session_mode": saved.session_mode.value,
        "created_at": rows.to_ms(saved.created_at),
        "next_run_at": None if saved.next_run_at is None else rows.to_ms(saved.next_run_at),
        "chat_session_id": saved.chat_session_id,
        "paused_reason": saved.paused_reason,
    }
    await tx.upsert("jobs", values, key=("job_id",), keep=("user_id", "created_at"))
    tx.touch(topic(saved.user_id))


class JobSide(MachineSide):
    """The :class:`~orchestrator.domain.ports.JobUserBackend` and ``JobSchedulerBackend``."""

    # --- helpers ----------------------------------------------------------------------

    async def _owned_job(self, tx: Tx, user: UserId, job_id: JobId) -> Job:
        row = await tx.found(
            NO_JOB, "SELECT * FROM jobs WHERE job_id = ? AND user_id = ?", job_id, user
        )
        return job(row)

    async def _load_job(self, tx: Tx, job_id: str) -> Job:
        row = await tx.one("SELECT * FROM jobs WHERE job_id = ?", job_id)
        assert row is not None
        return job(row)

    async def _check_worker(self, tx: Tx, user: UserId, draft: JobDraft) -> None:
        row = await tx.found(NO_WORKER, OWNED_WORKER, draft.worker_id, user)
        check_model(rows.worker(row), draft.model)

    async def _open_session(self, tx: Tx, found: Job, now: int) -> tuple[str, str]:
        """Queue the run's prompt in its session (made if needed); the session and message IDs."""
        assert found.worker_id is not None
        row = await tx.found(NO_WORKER, OWNED_WORKER, found.worker_id, found.user_id)
        last = None
        if found.chat_session_id:
            last_row = await tx.one(
                "SELECT * FROM chat_sessions WHERE chat_session_id = ?", found.chat_session_id
            )
            last = None if last_row is None else rows.chat_session(last_row)
        started = start_run_session(
            found,
            rows.worker(row),
            last,
            lambda: ChatSessionId(self._ids.new_id("chat_session")),
            lambda: MessageId(self._ids.new_id("message")),
            rows.from_ms(now),
        )
        session = started.session
        if started.opened:
            await tx.run(
                "INSERT INTO chat_sessions (chat_session_id, worker_id, user_id, model, status,"
                " created_at, last_activity, title) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                session.chat_session_id,
                session.worker_id,
                session.user_id,
                session.model,
                session.status.value,
                now,
                now,
                session.title,
            )
        else:
            await tx.run(
                "UPDATE chat_sessions SET status = ?, last_activity = ? WHERE chat_session_id = ?",
                session.status.value,
                now,
                session.chat_session_id,
            )
        if started.job != found:
            await _save_job(tx, started.job)
        message = started.message
        await rows.insert(tx, "chat_messages", message)
        touch_session(tx, session.worker_id, session.chat_session_id, row["machine_id"], turns=True)
        return session.chat_session_id, message.message_id

    async def _start_run(
        self, tx: Tx, found: Job, scheduled_for: datetime, now: int | None = None
    ) -> JobRun | None:
        """Record the run of slot ``scheduled_for`` and send its prompt; None if it ran."""
        now = self._now() if now is None else now
        run_id = self._ids.new_id("job_run")
        try:
            await tx.run(
                "INSERT INTO job_runs (run_id, job_id, scheduled_for, created_at)"
                " VALUES (?, ?, ?, ?)",
                run_id,
                found.job_id,
                rows.to_ms(scheduled_for),
                now,
            )
        except sqlite3.IntegrityError:
            return None
        try:
            session_id, message_id = await self._open_session(tx, found, now)
        except OrchestratorError as exc:
            await tx.run(
                "UPDATE job_runs SET status = 'failed', error = ?, finished_at = ?"
                " WHERE run_id = ?",
                str(exc),
                now,
                run_id,
            )
        else:
            await tx.run(
                "UPDATE job_runs SET chat_session_id = ?, message_id = ? WHERE run_id = ?",
                session_id,
                message_id,
                run_id,
            )
        tx.touch(topic(found.user_id))
        row = await tx.one("SELECT * FROM job_runs WHERE run_id = ?", run_id)
        assert row is not None
        return await _run(tx, row)

    # --- the owner's side -------------------------------------------------------------

    async def create_job(self, user: UserId, draft: JobDraft, next_run_at: datetime | None) -> Job:
        job_id = JobId(self._ids.new_id("job"))
        async with self._store.transaction(write=True) as tx:
            await self._check_worker(tx, user, draft)
            now = rows.from_ms(self._now())
            await _save_job(tx, new_job(job_id, user, draft, next_run_at, now))
            return await self._load_job(tx, job_id)

    async def update_job(
        self, user: UserId, job_id: JobId, draft: JobDraft, next_run_at: datetime | None
    ) -> Job:
        async with self._store.transaction(write=True) as tx:
            old = await self._owned_job(tx, user, job_id)
            await self._check_worker(tx, user, draft)
            await _save_job(tx, edit_job(old, draft, next_run_at))
            return await self._load_job(tx, job_id)

    async def set_job_enabled(
        self, user: UserId, job_id: JobId, enabled: bool, next_run_at: datetime | None
    ) -> Job:
        async with self._store.transaction(write=True) as tx:
            found = await self._owned_job(tx, user, job_id)
            await _save_job(tx, enable_job(found, enabled, next_run_at))
            return await self._load_job(tx, job_id)

    async def delete_job(self, user: UserId, job_id: JobId) -> None:
        async with self._store.transaction(write=True) as tx:
            await self._owned_job(tx, user, job_id)
            await tx.run("DELETE FROM jobs WHERE job_id = ?", job_id)
            tx.touch(topic(user))

    async def get_job(self, user: UserId, job_id: JobId) -> Job:
        async with self._store.transaction() as tx:
            return await self._owned_job(tx, user, job_id)

    async def list_jobs(self, user: UserId) -> list[Job]:
        async with self._store.transaction() as tx:
            found = await tx.all(
                "SELECT * FROM jobs WHERE user_id = ? ORDER BY created_at, rowid", user
            )
            return [job(row) for row in found]

    async def list_jobs_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[Job]:
        count = page_limit(limit, LIST_PAGE)
        after = decode_cursor(cursor, JOBS, user)
        async with self._store.transaction() as tx:
            start = await keyset_start(tx, "jobs", after, user)
            found = await tx.all(
                "SELECT * FROM jobs WHERE user_id = ? AND (created_at, rowid) > (?, ?)"
                " ORDER BY created_at, rowid LIMIT ?",
                user,
                *start,
                count + 1,
            )
        items, more = cut_page([job(row) for row in found], count, job_size)
        return make_page(items, more, JOBS, user, lambda j: j.job_id)

    async def list_job_runs(
        self, user: UserId, job_id: JobId, limit: int = JOB_RUNS_LIMIT
    ) -> list[JobRun]:
        async with self._store.transaction() as tx:
            await self._owned_job(tx, user, job_id)
            found = await tx.all(
                "SELECT * FROM job_runs WHERE job_id = ?"
                " ORDER BY created_at DESC, rowid DESC LIMIT ?",
                job_id,
                max(0, min(limit, JOB_RUNS_LIMIT)),
            )
            return [await _run(tx, row) for row in found]

    async def run_job_now(self, user: UserId, job_id: JobId) -> JobRun:
        async with self._store.transaction(write=True) as tx:
            found = await self._owned_job(tx, user, job_id)
            job_worker(found)
            now = self._now()
            run = await self._start_run(tx, found, rows.from_ms(now), now)
            if run is None:
                raise Conflict("This job has just been started. Try again in a moment.")
            return run

    def watch_jobs(self, user: UserId) -> AsyncGenerator[list[Job], None]:
        return self._store.feed.watch([topic(user)], lambda: self.list_jobs(user))

    # --- the scheduler's side -------------------------------------------------------

    async def list_due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        async with self._store.transaction() as tx:
            found = await tx.all(
                "SELECT * FROM jobs WHERE enabled = 1 AND next_run_at IS NOT NULL"
                " AND next_run_at <= ? ORDER BY next_run_at, rowid LIMIT ?",
                rows.to_ms(now),
                max(0, limit),
            )
            return [job(row) for row in found]

    async def start_job_run(
        self, job_id: JobId, scheduled_for: datetime, next_run_at: datetime | None
    ) -> JobRun | None:
        async with self._store.transaction(write=True) as tx:
            row = await tx.one(
                "SELECT * FROM jobs WHERE job_id = ? AND enabled = 1 AND next_run_at = ?",
                job_id,
                rows.to_ms(scheduled_for),
            )
            if row is None:
                return None
            found = job(row)
            run = await self._start_run(tx, found, scheduled_for)
            await tx.run(
                "UPDATE jobs SET next_run_at = ?, enabled = ? WHERE job_id = ?",
                None if next_run_at is None else rows.to_ms(next_run_at),
                int(next_run_at is not None),
                job_id,
            )
            tx.touch(topic(found.user_id))
            return run

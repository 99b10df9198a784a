"""The backend contract for scheduled jobs: the owner's side and the scheduler's."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from orchestrator.application.jobs import run_due_jobs
from orchestrator.domain.chat import ChatSessionStatus, MessageRole, MessageStatus
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import JobId, MachineToken, UserId
from orchestrator.domain.jobs import WORKER_REMOVED, Job, JobDraft, RunStatus, SessionMode
from orchestrator.domain.model import Machine, Worker
from orchestrator.domain.ports import Backend
from orchestrator.testing import FakeClock
from tests.contract.conftest import MODELS, MachineFactory, ready_worker
from tests.contract.test_watch_contract import next_value, watching

pytestmark = pytest.mark.anyio

#: A fixed instant for schedules; the backends' own clocks do not matter to them.
T0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
HOURLY = "0 * * * *"
#: The slot after T0 on the HOURLY schedule: where starting T0's run moves a job on to.
NEXT_SLOT = T0 + timedelta(hours=1)


JobsBackend = Backend


@pytest.fixture
def job_backend(backend: Backend) -> Backend:
    return backend


@attrs.frozen
class Setup:
    machine: Machine
    token: MachineToken
    worker: Worker


@pytest.fixture
async def setup(job_backend: JobsBackend, alice: UserId, new_machine: MachineFactory) -> Setup:
    return Setup(*await ready_worker(job_backend, alice, new_machine))


def draft(setup: Setup, **changes: Any) -> JobDraft:
    base = JobDraft(
        worker_id=setup.worker.worker_id,
        name="nightly",
        model=MODELS[0],
        prompt="Summarise the repo.",
        cron=HOURLY,
        timezone="Europe/Berlin",
    )
    return attrs.evolve(base, **changes)


async def new_job(
    backend: JobsBackend,
    user: UserId,
    setup: Setup,
    next_run_at: datetime | None = T0,
    **kw: object,
) -> Job:
    return await backend.create_job(user, draft(setup, **kw), next_run_at)


# --- the owner's side ---------------------------------------------------------------


async def test_create_get_and_list(job_backend: JobsBackend, alice: UserId, setup: Setup) -> None:
    job = await new_job(job_backend, alice, setup, session_mode=SessionMode.SAME_SESSION)
    assert (job.user_id, job.worker_id, job.name, job.model) == (
        alice,
        setup.worker.worker_id,
        "nightly",
        MODELS[0],
    )
    assert (job.prompt, job.cron, job.timezone) == ("Summarise the repo.", HOURLY, "Europe/Berlin")
    assert job.enabled
    assert job.next_run_at == T0
    assert job.session_mode is SessionMode.SAME_SESSION
    assert job.chat_session_id is None
    assert job.paused_reason is None
    second = await new_job(job_backend, alice, setup, name="weekly")
    assert await job_backend.get_job(alice, job.job_id) == job
    assert await job_backend.list_jobs(alice) == [job, second]


async def test_create_disabled_has_no_next_run(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup, next_run_at=None, enabled=False)
    assert not job.enabled
    assert job.next_run_at is None


async def test_create_refuses_another_users_worker(
    job_backend: JobsBackend, alice: UserId, bob: UserId, setup: Setup
) -> None:
    with pytest.raises(NotFound, match=r"^No such worker\.$"):
        await new_job(job_backend, bob, setup)
    assert await job_backend.list_jobs(bob) == []


async def test_create_refuses_a_pending_worker_and_an_unknown_model(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    token = await job_backend.issue_worker_token(alice, setup.machine.machine_id)
    pending = await job_backend.register_worker(setup.token, token, "other", None)
    with pytest.raises(Conflict, match="waiting for approval"):
        await job_backend.create_job(alice, draft(setup, worker_id=pending.worker_id), T0)
    with pytest.raises(InvalidInput, match="does not offer model fake/unknown"):
        await new_job(job_backend, alice, setup, model="fake/unknown")
    assert await job_backend.list_jobs(alice) == []


async def test_another_users_job_is_not_found(
    job_backend: JobsBackend, alice: UserId, bob: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    for call in (
        job_backend.get_job(bob, job.job_id),
        job_backend.update_job(bob, job.job_id, draft(setup), T0),
        job_backend.set_job_enabled(bob, job.job_id, False, None),
        job_backend.delete_job(bob, job.job_id),
        job_backend.list_job_runs(bob, job.job_id),
        job_backend.run_job_now(bob, job.job_id),
        job_backend.get_job(alice, JobId("job_unknown")),
    ):
        with pytest.raises(NotFound, match=r"^No such job\.$"):
            await call
    assert await job_backend.get_job(alice, job.job_id) == job
    assert await job_backend.list_job_runs(alice, job.job_id) == []


async def test_update_replaces_settings(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    later = T0 + timedelta(days=1)
    changed = await job_backend.update_job(
        alice,
        job.job_id,
        draft(setup, name="daily", model=MODELS[1], prompt="Hi", cron="0 9 * * *"),
        later,
    )
    assert (changed.name, changed.model, changed.prompt, changed.cron) == (
        "daily",
        MODELS[1],
        "Hi",
        "0 9 * * *",
    )
    assert changed.next_run_at == later
    assert changed.created_at == job.created_at
    assert await job_backend.get_job(alice, job.job_id) == changed
    with pytest.raises(InvalidInput, match="does not offer model"):
        await job_backend.update_job(alice, job.job_id, draft(setup, model="x/y"), later)


async def test_pause_and_resume(job_backend: JobsBackend, alice: UserId, setup: Setup) -> None:
    job = await new_job(job_backend, alice, setup)
    paused = await job_backend.set_job_enabled(alice, job.job_id, False, None)
    assert not paused.enabled
    assert paused.next_run_at is None
    assert await job_backend.list_due_jobs(T0 + timedelta(days=9)) == []
    resumed = await job_backend.set_job_enabled(alice, job.job_id, True, T0)
    assert resumed.enabled
    assert resumed.next_run_at == T0


async def test_delete_removes_job_and_runs_but_keeps_sessions(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    run = await job_backend.run_job_now(alice, job.job_id)
    await job_backend.delete_job(alice, job.job_id)
    with pytest.raises(NotFound, match=r"^No such job\.$"):
        await job_backend.get_job(alice, job.job_id)
    assert await job_backend.list_jobs(alice) == []
    assert run.chat_session_id is not None
    assert (await job_backend.get_session(alice, run.chat_session_id)).worker_id == (
        setup.worker.worker_id
    )


async def test_run_now_sends_the_prompt_in_a_new_session(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    run = await job_backend.run_job_now(alice, job.job_id)
    assert run.job_id == job.job_id
    assert run.status is RunStatus.PENDING
    assert run.error is None
    assert run.scheduled_for == run.created_at
    assert run.chat_session_id is not None
    assert run.message_id is not None
    session = await job_backend.get_session(alice, run.chat_session_id)
    assert (session.worker_id, session.model) == (setup.worker.worker_id, MODELS[0])
    assert session.title == "nightly"  # named after its job
    sessions = await job_backend.list_sessions(alice, setup.worker.worker_id)
    assert [s.chat_session_id for s in sessions] == [run.chat_session_id]
    [message] = await job_backend.list_messages(alice, run.chat_session_id)
    assert (message.message_id, message.role, message.content, message.status) == (
        run.message_id,
        MessageRole.USER,
        "Summarise the repo.",
        MessageStatus.PENDING,
    )
    assert (await job_backend.get_job(alice, job.job_id)).next_run_at == T0  # untouched
    again = await job_backend.run_job_now(alice, job.job_id)
    assert again.chat_session_id != run.chat_session_id
    assert await job_backend.list_job_runs(alice, job.job_id) == [again, run]


async def test_run_status_follows_the_reply(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    ok = await job_backend.run_job_now(alice, job.job_id)
    bad = await job_backend.run_job_now(alice, job.job_id)
    assert ok.message_id is not None
    assert bad.message_id is not None

    async def statuses() -> list[tuple[RunStatus, str | None]]:
        runs = await job_backend.list_job_runs(alice, job.job_id)
        return [(r.status, r.error) for r in reversed(runs)]

    assert await statuses() == [(RunStatus.PENDING, None)] * 2
    reply = await job_backend.claim_message(setup.token, ok.message_id)
    assert (await statuses())[0] == (RunStatus.RUNNING, None)
    await job_backend.complete_message(setup.token, reply.message_id, "All good.")
    other = await job_backend.claim_message(setup.token, bad.message_id)
    await job_backend.end_reply(setup.token, other.message_id, MessageStatus.FAILED, "It broke.")
    assert await statuses() == [(RunStatus.DONE, None), (RunStatus.FAILED, "It broke.")]


async def test_same_session_runs_share_a_session_until_it_ends(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup, session_mode=SessionMode.SAME_SESSION)
    first = await job_backend.run_job_now(alice, job.job_id)
    assert first.chat_session_id is not None
    assert (await job_backend.get_job(alice, job.job_id)).chat_session_id == first.chat_session_id
    second = await job_backend.run_job_now(alice, job.job_id)
    assert second.chat_session_id == first.chat_session_id
    assert len(await job_backend.list_messages(alice, first.chat_session_id)) == 2
    ended = await job_backend.end_session(alice, first.chat_session_id)
    assert ended.status is ChatSessionStatus.TERMINATED
    third = await job_backend.run_job_now(alice, job.job_id)
    assert third.chat_session_id not in (None, first.chat_session_id)
    assert (await job_backend.get_job(alice, job.job_id)).chat_session_id == third.chat_session_id


async def test_removing_the_worker_pauses_the_job_and_keeps_history(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    run = await job_backend.run_job_now(alice, job.job_id)
    assert run.message_id is not None
    reply = await job_backend.claim_message(setup.token, run.message_id)
    await job_backend.complete_message(setup.token, reply.message_id, "Done.")
    await job_backend.remove_worker(alice, setup.worker.worker_id)
    paused = await job_backend.get_job(alice, job.job_id)
    assert (paused.enabled, paused.next_run_at, paused.worker_id) == (False, None, None)
    assert paused.paused_reason == WORKER_REMOVED == "Its worker was removed."
    [kept] = await job_backend.list_job_runs(alice, job.job_id)
    assert (kept.run_id, kept.status) == (run.run_id, RunStatus.DONE)
    assert await job_backend.list_due_jobs(T0 + timedelta(days=1)) == []
    with pytest.raises(Conflict, match="no worker"):
        await job_backend.set_job_enabled(alice, job.job_id, True, T0)
    with pytest.raises(Conflict, match="no worker"):
        await job_backend.run_job_now(alice, job.job_id)
    with pytest.raises(NotFound, match=r"^No such worker\.$"):
        await job_backend.update_job(alice, job.job_id, draft(setup), T0)


async def test_editing_a_paused_job_onto_a_new_worker_clears_the_reason(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    await job_backend.remove_worker(alice, setup.worker.worker_id)
    worker = await job_backend.add_worker(alice, setup.machine.machine_id, "other", None)
    worker = await job_backend.update_worker_models(setup.token, worker.worker_id, MODELS)
    moved = await job_backend.update_job(
        alice, job.job_id, draft(setup, worker_id=worker.worker_id), T0
    )
    assert (moved.worker_id, moved.enabled, moved.paused_reason) == (worker.worker_id, True, None)


async def test_deleting_the_machine_pauses_its_workers_jobs(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    job = await new_job(job_backend, alice, setup)
    await job_backend.run_job_now(alice, job.job_id)
    await job_backend.delete_machine(alice, setup.machine.machine_id)
    paused = await job_backend.get_job(alice, job.job_id)
    assert (paused.enabled, paused.worker_id, paused.paused_reason) == (
        False,
        None,
        WORKER_REMOVED,
    )
    [run] = await job_backend.list_job_runs(alice, job.job_id)
    assert run.status is RunStatus.PENDING  # frozen as it was


async def test_watch_jobs_yields_now_then_changes(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    async with watching(job_backend.watch_jobs(alice)) as updates:
        assert await next_value(updates) == []
        job = await new_job(job_backend, alice, setup)
        assert await next_value(updates) == [job]
        paused = await job_backend.set_job_enabled(alice, job.job_id, False, None)
        assert await next_value(updates) == [paused]


# --- the scheduler's side -----------------------------------------------------------


async def test_list_due_jobs(job_backend: JobsBackend, alice: UserId, setup: Setup) -> None:
    late = await new_job(job_backend, alice, setup, next_run_at=T0 + timedelta(hours=1))
    early = await new_job(job_backend, alice, setup, next_run_at=T0)
    await new_job(job_backend, alice, setup, next_run_at=None, enabled=False)
    assert await job_backend.list_due_jobs(T0 - timedelta(seconds=1)) == []
    assert await job_backend.list_due_jobs(T0) == [early]
    assert await job_backend.list_due_jobs(T0 + timedelta(hours=2)) == [early, late]
    assert await job_backend.list_due_jobs(T0 + timedelta(hours=2), limit=1) == [early]


async def test_start_job_run_is_a_compare_and_set(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    """A run starts only for the job's current slot, once; a paused or unknown job starts none."""
    job = await new_job(job_backend, alice, setup)
    assert await job_backend.start_job_run(job.job_id, T0 - timedelta(hours=1), NEXT_SLOT) is None
    run = await job_backend.start_job_run(job.job_id, T0, NEXT_SLOT)
    assert run is not None
    assert run.scheduled_for == T0
    assert run.status is RunStatus.PENDING
    assert (await job_backend.get_job(alice, job.job_id)).next_run_at == NEXT_SLOT
    assert await job_backend.start_job_run(job.job_id, T0, NEXT_SLOT) is None
    await job_backend.set_job_enabled(alice, job.job_id, False, None)
    assert await job_backend.start_job_run(job.job_id, NEXT_SLOT, None) is None
    assert await job_backend.start_job_run(JobId("job_unknown"), T0, None) is None
    assert await job_backend.list_job_runs(alice, job.job_id) == [run]


async def test_concurrent_starts_of_one_slot_make_one_run(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    """Five schedulers starting one slot at once make one run and one session."""
    job = await new_job(job_backend, alice, setup)
    results = await asyncio.gather(
        *(job_backend.start_job_run(job.job_id, T0, NEXT_SLOT) for _ in range(5))
    )
    assert len([r for r in results if r is not None]) == 1
    assert len(await job_backend.list_job_runs(alice, job.job_id)) == 1
    assert len(await job_backend.list_sessions(alice, setup.worker.worker_id)) == 1


async def test_a_run_that_cannot_start_fails_and_the_schedule_moves_on(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    """A run on a model the worker no longer offers fails saying why; the schedule moves on."""
    job = await new_job(job_backend, alice, setup, model=MODELS[1])
    await job_backend.update_worker_models(setup.token, setup.worker.worker_id, MODELS[:1])
    run = await job_backend.start_job_run(job.job_id, T0, NEXT_SLOT)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "does not offer model fake/large" in run.error
    assert run.chat_session_id is None
    assert run.message_id is None
    assert (await job_backend.get_job(alice, job.job_id)).next_run_at == NEXT_SLOT
    assert await job_backend.list_job_runs(alice, job.job_id) == [run]
    assert await job_backend.list_sessions(alice, setup.worker.worker_id) == []


async def test_a_run_for_a_worker_its_machine_refuses_fails_with_the_reason(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    """A worker whose machine cannot run it gets no queued prompt: the run fails saying why."""
    job = await new_job(job_backend, alice, setup)
    problem = "The folder 'repo' leads outside the machine's root."
    await job_backend.worker_offline(setup.token, setup.worker.worker_id, problem)
    scheduled = await job_backend.start_job_run(job.job_id, T0, NEXT_SLOT)
    now = await job_backend.run_job_now(alice, job.job_id)
    for run in (scheduled, now):
        assert run is not None
        assert (run.status, run.error, run.message_id) == (RunStatus.FAILED, problem, None)
    assert (await job_backend.get_job(alice, job.job_id)).next_run_at == NEXT_SLOT
    assert await job_backend.list_sessions(alice, setup.worker.worker_id) == []


async def test_scheduler_catches_up_once_and_never_twice(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    """Due three slots ago: one run, next run in the future; a second pass starts nothing."""
    job = await new_job(job_backend, alice, setup, cron=HOURLY, timezone="UTC")
    clock = FakeClock(T0 + timedelta(hours=2, minutes=30))
    [run] = await run_due_jobs(job_backend, clock)
    assert run.scheduled_for == T0
    assert (await job_backend.get_job(alice, job.job_id)).next_run_at == T0 + timedelta(hours=3)
    assert await run_due_jobs(job_backend, clock) == []
    clock.set(T0 + timedelta(hours=1))  # the clock jumps back: nothing runs early
    assert await run_due_jobs(job_backend, clock) == []
    clock.set(T0 + timedelta(hours=3))
    [next_run] = await run_due_jobs(job_backend, clock)
    assert next_run.scheduled_for == T0 + timedelta(hours=3)
    assert len(await job_backend.list_job_runs(alice, job.job_id)) == 2


async def test_concurrent_schedulers_start_each_slot_once(
    job_backend: JobsBackend, alice: UserId, setup: Setup
) -> None:
    jobs = [await new_job(job_backend, alice, setup, timezone="UTC") for _ in range(3)]
    clock = FakeClock(T0)
    passes = await asyncio.gather(*(run_due_jobs(job_backend, clock) for _ in range(4)))
    assert sorted(r.job_id for p in passes for r in p) == sorted(j.job_id for j in jobs)

"""The job use cases and the scheduler, driven by a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.system import Argon2Hasher
from orchestrator.application.jobs import (
    DEFAULT_MINIMUM_INTERVAL,
    create_job,
    run_due_jobs,
    scheduler_loop,
    seconds_until_next_look,
    set_job_enabled,
    update_job,
    validate_draft,
)
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import UserId, WorkerId
from orchestrator.domain.jobs import WORKER_REMOVED, JobDraft, RunStatus
from orchestrator.testing import FakeClock, InMemoryBackend, SequentialIds

pytestmark = pytest.mark.anyio

NOW = datetime(2030, 3, 4, 10, 17, tzinfo=UTC)
MODEL = "fake/small"


@attrs.frozen
class World:
    backend: InMemoryBackend
    clock: FakeClock
    user: UserId
    worker: WorkerId


@pytest.fixture
async def world(anyio_backend: str) -> World:
    clock = FakeClock(NOW)
    backend = InMemoryBackend(clock=clock)
    user = (await backend.create_user("alice", "hash")).user_id
    machine, token = await backend.create_machine(user, "laptop")
    worker = await backend.add_worker(user, machine.machine_id, "repo", None)
    await backend.update_worker_models(token, worker.worker_id, (MODEL,))
    return World(backend, clock, user, worker.worker_id)


def draft(world: World | None, **changes: Any) -> JobDraft:
    worker = WorkerId("wrk_1") if world is None else world.worker
    base = JobDraft(worker, "  hourly  ", MODEL, "Check the build.", "0 * * * *")
    return attrs.evolve(base, **changes)


# --- validation ---------------------------------------------------------------------


def test_validate_draft_cleans_name_and_cron() -> None:
    clean = validate_draft(draft(None, cron=" 0   *  * * * "), NOW, DEFAULT_MINIMUM_INTERVAL)
    assert (clean.name, clean.cron) == ("hourly", "0 * * * *")


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_empty_prompt_is_refused(prompt: str) -> None:
    with pytest.raises(InvalidInput, match=r"^A message must not be empty\.$"):
        validate_draft(draft(None, prompt=prompt), NOW, DEFAULT_MINIMUM_INTERVAL)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("", r"^The schedule is empty\. A cron expression has five fields"),
        ("0 * * *", r"^The schedule '0 \* \* \*' has 4 fields\."),
        ("61 * * * *", r"^The minute field '61' of the schedule '61 \* \* \* \*' is not valid\."),
        ("0 25 * * *", r"^The hour field '25' of the schedule"),
        ("0 0 * * mon-xyz", r"^The day of week field 'mon-xyz'"),
        ("0 0 30 2 *", r"^The day of month field '30'"),
    ],
)
def test_invalid_cron_says_where(cron: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        validate_draft(draft(None, cron=cron), NOW, DEFAULT_MINIMUM_INTERVAL)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^Unknown time zone 'Mars/Olympus'\."):
        validate_draft(draft(None, timezone="Mars/Olympus"), NOW, DEFAULT_MINIMUM_INTERVAL)


@pytest.mark.parametrize("cron", ["* * * * *", "*/2 * * * *", "0,3 * * * *"])
def test_schedules_more_frequent_than_the_minimum_are_refused(cron: str) -> None:
    with pytest.raises(InvalidInput, match=r"more often than the minimum of one run every 5 min"):
        validate_draft(draft(None, cron=cron), NOW, DEFAULT_MINIMUM_INTERVAL)
    validate_draft(draft(None, cron=cron), NOW, timedelta(minutes=1))


def test_the_minimum_interval_is_configurable() -> None:
    with pytest.raises(InvalidInput, match="one run every 120 minutes"):
        validate_draft(draft(None), NOW, timedelta(hours=2))
    validate_draft(draft(None, cron="*/5 * * * *"), NOW, DEFAULT_MINIMUM_INTERVAL)


# --- use cases ----------------------------------------------------------------------


async def test_create_schedules_the_first_due_time_in_the_jobs_zone(world: World) -> None:
    job = await create_job(
        world.backend,
        world.clock,
        world.user,
        draft(world, cron="30 9 * * *", timezone="Asia/Tokyo"),
    )
    # 09:30 in Tokyo is 00:30 UTC; it is 10:17 UTC now, so tomorrow.
    assert job.next_run_at == datetime(2030, 3, 5, 0, 30, tzinfo=UTC)
    assert job.name == "hourly"


async def test_create_paused_and_resume_later(world: World) -> None:
    job = await create_job(world.backend, world.clock, world.user, draft(world, enabled=False))
    assert not job.enabled
    assert job.next_run_at is None
    world.clock.set(NOW + timedelta(hours=5))
    resumed = await set_job_enabled(world.backend, world.clock, world.user, job.job_id, True)
    assert resumed.enabled
    assert resumed.next_run_at == datetime(2030, 3, 4, 16, tzinfo=UTC)
    paused = await set_job_enabled(world.backend, world.clock, world.user, job.job_id, False)
    assert not paused.enabled
    assert paused.next_run_at is None


async def test_update_recomputes_the_next_run(world: World) -> None:
    job = await create_job(world.backend, world.clock, world.user, draft(world))
    changed = await update_job(
        world.backend, world.clock, world.user, job.job_id, draft(world, cron="0 12 * * *")
    )
    assert changed.next_run_at == datetime(2030, 3, 4, 12, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="more often"):
        await update_job(
            world.backend, world.clock, world.user, job.job_id, draft(world, cron="* * * * *")
        )


async def test_create_refuses_bad_drafts_before_the_backend(world: World) -> None:
    with pytest.raises(InvalidInput, match="must not be empty"):
        await create_job(world.backend, world.clock, world.user, draft(world, prompt=" "))
    assert world.backend.jobs == {}


# --- the scheduler --------------------------------------------------------------------


async def test_run_due_jobs_starts_each_due_run(world: World) -> None:
    hourly = await create_job(world.backend, world.clock, world.user, draft(world))
    daily = await create_job(
        world.backend, world.clock, world.user, draft(world, cron="0 18 * * *")
    )
    assert await run_due_jobs(world.backend, world.clock) == []
    world.clock.set(datetime(2030, 3, 4, 11, 0, 5, tzinfo=UTC))
    [run] = await run_due_jobs(world.backend, world.clock)
    assert (run.job_id, run.scheduled_for) == (hourly.job_id, datetime(2030, 3, 4, 11, tzinfo=UTC))
    assert run.status is RunStatus.PENDING
    assert run.chat_session_id is not None
    [message] = await world.backend.list_messages(world.user, run.chat_session_id)
    assert message.content == "Check the build."
    world.clock.set(datetime(2030, 3, 4, 18, 0, tzinfo=UTC))
    started = await run_due_jobs(world.backend, world.clock)
    assert sorted(r.job_id for r in started) == sorted([hourly.job_id, daily.job_id])
    job = await world.backend.get_job(world.user, hourly.job_id)
    assert job.next_run_at == datetime(2030, 3, 4, 19, tzinfo=UTC)


async def test_missed_runs_run_once(world: World) -> None:
    job = await create_job(world.backend, world.clock, world.user, draft(world))
    world.clock.set(datetime(2030, 3, 4, 14, 20, tzinfo=UTC))  # 11:00, 12:00, 13:00, 14:00 missed
    [run] = await run_due_jobs(world.backend, world.clock)
    assert run.scheduled_for == datetime(2030, 3, 4, 11, tzinfo=UTC)
    after = await world.backend.get_job(world.user, job.job_id)
    assert after.next_run_at == datetime(2030, 3, 4, 15, tzinfo=UTC)
    assert await run_due_jobs(world.backend, world.clock) == []


async def test_a_clock_jumping_back_runs_nothing_early(world: World) -> None:
    await create_job(world.backend, world.clock, world.user, draft(world))
    world.clock.set(datetime(2030, 3, 4, 11, 0, tzinfo=UTC))
    assert len(await run_due_jobs(world.backend, world.clock)) == 1
    world.clock.set(datetime(2030, 3, 4, 9, 0, tzinfo=UTC))
    assert await run_due_jobs(world.backend, world.clock) == []
    world.clock.set(datetime(2030, 3, 4, 11, 59, tzinfo=UTC))
    assert await run_due_jobs(world.backend, world.clock) == []


async def test_a_deleted_worker_pauses_its_jobs(world: World) -> None:
    job = await create_job(world.backend, world.clock, world.user, draft(world))
    await world.backend.remove_worker(world.user, world.worker)
    world.clock.set(NOW + timedelta(days=1))
    assert await run_due_jobs(world.backend, world.clock) == []
    paused = await world.backend.get_job(world.user, job.job_id)
    assert (paused.enabled, paused.paused_reason) == (False, WORKER_REMOVED)


async def _loop_for_a_moment(backend: InMemoryBackend, clock: FakeClock) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(scheduler_loop, backend, clock, timedelta(milliseconds=5))
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()


async def test_a_restarted_scheduler_does_not_repeat_runs(world: World) -> None:
    job = await create_job(world.backend, world.clock, world.user, draft(world))
    world.clock.set(datetime(2030, 3, 4, 11, 0, 1, tzinfo=UTC))
    await _loop_for_a_moment(world.backend, world.clock)
    await _loop_for_a_moment(world.backend, world.clock)  # "restart": a new loop, same data
    assert len(await world.backend.list_job_runs(world.user, job.job_id)) == 1
    world.clock.set(datetime(2030, 3, 4, 12, 0, 1, tzinfo=UTC))
    await _loop_for_a_moment(world.backend, world.clock)
    assert len(await world.backend.list_job_runs(world.user, job.job_id)) == 2


async def test_two_server_processes_on_one_database_run_a_slot_once(tmp_path: Path) -> None:
    """Two backends on one SQLite file (as two ``serve`` processes) share each slot."""
    clock = FakeClock(NOW)
    path = tmp_path / "db.sqlite3"
    hasher = Argon2Hasher(fast=True)
    first = await open_backend(path, clock=clock, ids=SequentialIds(), hasher=hasher)
    second = await open_backend(path, clock=clock, ids=SequentialIds(issued=10_000), hasher=hasher)
    try:
        user = (await first.create_user("alice", "hash")).user_id
        machine, token = await first.create_machine(user, "laptop")
        worker = await first.add_worker(user, machine.machine_id, "repo", None)
        await first.update_worker_models(token, worker.worker_id, (MODEL,))
        job = await create_job(
            first, clock, user, JobDraft(worker.worker_id, "j", MODEL, "Go.", "0 * * * *")
        )
        clock.set(datetime(2030, 3, 4, 13, 30, tzinfo=UTC))
        results: list[int] = []

        async def scheduler(backend: object) -> None:
            assert backend is first or backend is second
            results.append(len(await run_due_jobs(backend, clock)))

        async with anyio.create_task_group() as group:
            for backend in (first, second, first, second):
                group.start_soon(scheduler, backend)
        assert sum(results) == 1
        assert len(await second.list_job_runs(user, job.job_id)) == 1
        # A restart: a fresh backend on the same file starts nothing new.
        assert await run_due_jobs(second, clock) == []
    finally:
        await first.close()
        await second.close()


async def test_the_scheduler_wakes_at_the_next_due_time_not_a_tick_later(world: World) -> None:
    """Sleep until the soonest due time within a tick; a whole tick when none is near or stuck."""
    tick = timedelta(seconds=15)
    job = await create_job(world.backend, world.clock, world.user, draft(world))
    assert job.next_run_at == datetime(2030, 3, 4, 11, 0, tzinfo=UTC)
    assert await seconds_until_next_look(world.backend, world.clock, tick) == 15.0
    world.clock.set(datetime(2030, 3, 4, 10, 59, 57, tzinfo=UTC))
    assert await seconds_until_next_look(world.backend, world.clock, tick) == 3.0
    # Still due after run_due_jobs (it could not start): retried at the normal pace, no busy loop.
    world.clock.set(datetime(2030, 3, 4, 11, 0, 1, tzinfo=UTC))
    assert await seconds_until_next_look(world.backend, world.clock, tick) == 15.0
    # Once started, the next slot is an hour away: a whole tick again.
    await run_due_jobs(world.backend, world.clock)
    assert await seconds_until_next_look(world.backend, world.clock, tick) == 15.0
    world.clock.set(datetime(2030, 3, 4, 11, 59, 50, tzinfo=UTC))
    assert await seconds_until_next_look(world.backend, world.clock, tick) == 10.0

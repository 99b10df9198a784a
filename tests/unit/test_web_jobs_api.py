"""The browser's scheduled-jobs API over the in-memory backend, and the app's scheduler."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.entrypoints.web.jobs_api import BAD_ENABLED, BAD_SESSION_MODE
from tests.unit.test_web_support import (
    MODEL,
    Chat,
    Harness,
    call,
    next_sse,
    online_worker,
    running_app,
)

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"scheduler_tick": timedelta(milliseconds=10)}

ENDPOINTS = [
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/job_1"),
    ("PUT", "/api/jobs/job_1"),
    ("DELETE", "/api/jobs/job_1"),
    ("POST", "/api/jobs/job_1/pause"),
    ("POST", "/api/jobs/job_1/resume"),
    ("POST", "/api/jobs/job_1/run"),
    ("GET", "/api/jobs/job_1/runs"),
]


def body(owner: Chat, **changes: Any) -> dict[str, Any]:
    base = {
        "worker_id": owner.worker.worker_id,
        "name": "Hourly check",
        "model": MODEL,
        "prompt": "Run the tests.",
        "cron": "0 * * * *",
        "timezone": "Europe/Berlin",
    }
    return {**base, **changes}


async def create(owner: Chat, **changes: Any) -> dict[str, Any]:
    status, data = await owner.post("/api/jobs", body(owner, **changes))
    assert status == 201, data
    job: dict[str, Any] = data["job"]
    return job


async def test_create_get_list_and_json_shape(owner: Chat) -> None:
    job = await create(owner)
    assert set(job) == {
        "job_id",
        "user_id",
        "worker_id",
        "name",
        "model",
        "prompt",
        "cron",
        "timezone",
        "enabled",
        "session_mode",
        "created_at",
        "next_run_at",
        "chat_session_id",
        "paused_reason",
    }
    assert job["enabled"] is True
    assert job["session_mode"] == "new_session"
    assert job["paused_reason"] is None
    # The fake clock starts at 2025-01-01T00:00Z: the next full hour, in UTC.
    assert job["next_run_at"] == "2025-01-01T01:00:00+00:00"
    status, data = await call(owner, "GET", f"/api/jobs/{job['job_id']}")
    assert (status, data) == (200, {"job": job})
    status, data = await call(owner, "GET", "/api/jobs")
    assert (status, data) == (200, {"jobs": [job]})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"prompt": "  "}, "A message must not be empty."),
        ({"cron": "61 * * * *"}, "The minute field '61' of the schedule"),
        ({"cron": "* * * *"}, "has 4 fields"),
        ({"cron": "*/1 * * * *"}, "more often than the minimum of one run every 5 minutes"),
        ({"timezone": "Nowhere/Land"}, "Unknown time zone 'Nowhere/Land'."),
        ({"model": "fake/unknown"}, "does not offer model fake/unknown"),
        ({"session_mode": "sometimes"}, BAD_SESSION_MODE),
        ({"enabled": "yes"}, BAD_ENABLED),
        ({"name": ""}, "must not be empty"),
        ({"cron": 5}, "The field 'cron' must be a string."),
        ({"prompt": None}, "The field 'prompt' is required."),
    ],
)
async def test_bad_bodies_are_refused_with_one_sentence(
    owner: Chat, changes: dict[str, Any], message: str
) -> None:
    status, data = await owner.post("/api/jobs", body(owner, **changes))
    assert status == 400, data
    assert message in data["error"]
    assert owner.web.backend.jobs == {}


async def test_the_minimum_interval_comes_from_the_settings(tmp_path: Path) -> None:
    async with running_app(tmp_path, job_minimum_interval=timedelta(minutes=1)) as web:
        owner = await online_worker(web)
        await create(owner, cron="* * * * *")


async def test_another_users_worker_and_job_are_not_found(web: Harness, owner: Chat) -> None:
    job = await create(owner)
    bob = await web.new_client()
    await web.create_user("bob")
    bob_csrf = await web.sign_in(bob, "bob")
    headers = {"X-CSRF-Token": bob_csrf}
    response = await bob.post("/api/jobs", json=body(owner), headers=headers)
    assert (response.status, (await response.json())["error"]) == (404, "No such worker.")
    for method, path in ENDPOINTS[2:]:
        path = path.replace("job_1", job["job_id"])
        response = await bob.request(method, path, json=body(owner), headers=headers)
        assert response.status == 404, (method, path)
        assert (await response.json())["error"] == "No such job."
    response = await bob.get("/api/jobs")
    assert await response.json() == {"jobs": []}


async def test_update_pause_resume_and_delete(owner: Chat) -> None:
    job = await create(owner)
    path = f"/api/jobs/{job['job_id']}"
    status, data = await call(owner, "PUT", path, body(owner, cron="30 9 * * *", name="Daily"))
    assert status == 200
    assert (data["job"]["name"], data["job"]["cron"]) == ("Daily", "30 9 * * *")
    assert data["job"]["next_run_at"] == "2025-01-01T08:30:00+00:00"  # 09:30 in Berlin
    status, data = await call(owner, "PUT", path, body(owner, cron="nope"))
    assert status == 400
    status, data = await call(owner, "POST", f"{path}/pause")
    assert (status, data["job"]["enabled"], data["job"]["next_run_at"]) == (200, False, None)
    status, data = await call(owner, "POST", f"{path}/resume")
    assert (status, data["job"]["enabled"]) == (200, True)
    assert data["job"]["next_run_at"] == "2025-01-01T08:30:00+00:00"
    status, _ = await call(owner, "DELETE", path)
    assert status == 204
    status, data = await call(owner, "GET", path)
    assert (status, data["error"]) == (404, "No such job.")


async def test_run_now_and_history(owner: Chat) -> None:
    job = await create(owner)
    path = f"/api/jobs/{job['job_id']}"
    status, data = await call(owner, "POST", f"{path}/run")
    assert status == 201
    run = data["run"]
    assert set(run) == {
        "run_id",
        "job_id",
        "scheduled_for",
        "created_at",
        "status",
        "chat_session_id",
        "message_id",
        "finished_at",
        "error",
    }
    assert (run["status"], run["error"]) == ("pending", None)
    status, data = await call(owner, "GET", f"{path}/runs")
    assert (status, data) == (200, {"runs": [run]})
    sessions = await owner.web.backend.list_sessions(owner.user, owner.worker.worker_id)
    assert [s.chat_session_id for s in sessions] == [run["chat_session_id"]]
    _, data = await call(owner, "GET", path)
    assert data["job"]["next_run_at"] == job["next_run_at"]


async def test_a_removed_worker_shows_the_pause_reason(owner: Chat) -> None:
    job = await create(owner)
    await owner.web.backend.remove_worker(owner.user, owner.worker.worker_id)
    _, data = await call(owner, "GET", f"/api/jobs/{job['job_id']}")
    assert data["job"]["paused_reason"] == "Its worker was removed."
    assert (data["job"]["enabled"], data["job"]["worker_id"]) == (False, None)
    status, data = await call(owner, "POST", f"/api/jobs/{job['job_id']}/resume")
    assert status == 409
    assert "no worker" in data["error"]


async def test_the_app_scheduler_starts_due_runs(owner: Chat) -> None:
    job = await create(owner)
    owner.web.clock.advance(timedelta(hours=1, seconds=5))
    with anyio.fail_after(5):
        while True:
            _, data = await call(owner, "GET", f"/api/jobs/{job['job_id']}/runs")
            if data["runs"]:
                break
            await anyio.sleep(0.01)
    [run] = data["runs"]
    assert run["scheduled_for"] == "2025-01-01T01:00:00+00:00"
    _, data = await call(owner, "GET", f"/api/jobs/{job['job_id']}")
    assert data["job"]["next_run_at"] == "2025-01-01T02:00:00+00:00"


async def test_events_stream_jobs_on_request(owner: Chat) -> None:
    async with owner.web.client.get("/api/events?jobs=1") as response:
        seen: dict[str, Any] = {}
        with anyio.fail_after(5):
            while "jobs" not in seen:
                event = await next_sse(response)
                seen[event.event] = event.data
        assert seen["jobs"] == {"jobs": []}
        job = await create(owner)
        with anyio.fail_after(5):
            while True:
                event = await next_sse(response)
                if event.event == "jobs":
                    break
        assert event.data == {"jobs": [job]}

"""A scheduled job's run through the real parts: server, machine process, opencode, fake model.

The client uses only the user API: it creates a job and presses "Run now"; the
run is a user message the machine answers like any other, and the run's status
follows the reply from pending to done. Due-time behaviour (the scheduler,
missed runs, restarts) is proven with a controllable clock in the unit and
contract tests; nobody waits for a real minute here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.chat_stage import replies_finished, worker_ready
from tests.integration.harness import NEEDS_OPENCODE

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_OPENCODE]

REPLY = "The nightly check found nothing to report."


async def test_run_now_goes_from_pending_to_done_with_the_reply_in_its_session(
    tmp_path: Path,
) -> None:
    """Run now queues the job's prompt; the run goes from pending to done with the reply."""
    async with worker_ready(tmp_path, reply=REPLY, delta_delay=0.01) as ready:
        created = await ready.api.call(
            "POST",
            "/api/jobs",
            {
                "worker_id": ready.worker_id,
                "name": "Nightly check",
                "model": ready.model,
                "prompt": "Check the repository, please.",
                "cron": "0 3 * * *",
                "timezone": "Europe/Berlin",
            },
            201,
        )
        job = created["job"]
        assert job["enabled"] is True
        assert job["next_run_at"].endswith("+00:00")

        started = await ready.api.call("POST", f"/api/jobs/{job['job_id']}/run", None, 201)
        run = started["run"]
        assert run["status"] == "pending"
        session_id = run["chat_session_id"]

        seen: list[str] = [run["status"]]
        deadline = time.monotonic() + 90
        while seen[-1] != "done":
            assert time.monotonic() < deadline, seen
            listed = await ready.api.call("GET", f"/api/jobs/{job['job_id']}/runs")
            [current] = listed["runs"]
            assert current["status"] != "failed", current
            if current["status"] != seen[-1]:
                seen.append(current["status"])
            await anyio.sleep(0.05)
        assert seen[0] == "pending"
        assert seen[-1] == "done"

        _, messages = await ready.api.stream(session_id, replies_finished(1))
        question, reply = messages
        assert (question["role"], question["content"]) == (
            "user",
            "Check the repository, please.",
        )
        assert (reply["role"], reply["status"], reply["content"]) == (
            "assistant",
            "completed",
            REPLY,
        )
        assert "Check the repository, please." in ready.stage.model.chat_requests[-1].user_texts

        sessions: Any = await ready.api.call("GET", f"/api/workers/{ready.worker_id}/sessions")
        assert session_id in [x["chat_session_id"] for x in sessions["sessions"]]
        after: Any = await ready.api.call("GET", f"/api/jobs/{job['job_id']}")
        assert after["job"]["next_run_at"] == job["next_run_at"]  # "Run now" left it
    assert ready.machine.returncode == 0, "".join(ready.lines)

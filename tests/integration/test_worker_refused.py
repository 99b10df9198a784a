"""A worker whose folder leads out of the machine's root, with the real server and machine.

The server cannot see the machine's disk, so it accepts the worker; the
machine refuses it and says why, as the worker's problem, which the owner sees
and which messages to it are refused with instead of waiting forever.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.chat_stage import Api, signed_in, stage
from tests.integration.harness import NEEDS_OPENCODE, Output, stop

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]

OUTSIDE = "leads outside the machine's root"


async def _worker(api: Api, machine_id: str, worker_id: str) -> dict[str, Any]:
    listed = await api.call("GET", f"/api/machines/{machine_id}/workers")
    [worker] = [w for w in listed["workers"] if w["worker_id"] == worker_id]
    return dict(worker)


async def _wait_for(api: Api, machine_id: str, worker_id: str, check: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while not check(worker := await _worker(api, machine_id, worker_id)):
        assert time.monotonic() < deadline, worker
        await anyio.sleep(0.2)
    return worker


async def test_a_worker_on_a_symlink_out_of_the_root_is_refused_where_the_user_sees_why(
    tmp_path: Path,
) -> None:
    """Symlinked folder: the worker shows the machine's sentence; messages get it as a 409."""
    outside = tmp_path / "outside"
    outside.mkdir()
    with stage(tmp_path) as s:
        (s.root / "escape").symlink_to(outside)
        (s.root / "project").mkdir()
        machine_id = s.token.split(":")[0]
        machine = Output(s.worker())
        try:
            machine.wait_for(r"Machine .* is online")
            async with signed_in(s.server) as api:
                added = await api.call(
                    "POST", f"/api/machines/{machine_id}/workers", {"directory": "escape"}, 201
                )
                escape_id = added.get("worker", added)["worker_id"]
                refused = await _wait_for(api, machine_id, escape_id, lambda w: w["problem"])
                assert refused["status"] == "offline"
                assert OUTSIDE in refused["problem"]
                machine.wait_for(OUTSIDE)

                # A worker that ran fine, whose folder is swapped for a symlink out of the root.
                added = await api.call(
                    "POST", f"/api/machines/{machine_id}/workers", {"directory": "project"}, 201
                )
                project_id = added.get("worker", added)["worker_id"]
                ready = await _wait_for(
                    api, machine_id, project_id, lambda w: w["status"] == "online" and w["models"]
                )
                created = await api.call(
                    "POST",
                    f"/api/workers/{project_id}/sessions",
                    {"model": ready["models"][0]},
                    201,
                )
                session_id = created.get("session", created)["chat_session_id"]
                machine.process.send_signal(signal.SIGTERM)
                assert machine.process.wait(timeout=30) == 0
                (s.root / "project").rmdir()
                (s.root / "project").symlink_to(outside)
                machine = Output(s.worker())
                refused = await _wait_for(api, machine_id, project_id, lambda w: w["problem"])
                assert OUTSIDE in refused["problem"]
                answer = await api.send(session_id, "hello?", 409)
                assert answer["error"] == refused["problem"]
                listed = await api.call("GET", f"/api/sessions/{session_id}/messages")
                assert listed["messages"] == []
        finally:
            stop(machine.process)

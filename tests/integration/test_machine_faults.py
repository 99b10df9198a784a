"""Faults of the machine process with real parts: server, ``worker start``, opencode, fake model.

Each test stops or kills the real machine process (SIGTERM / SIGKILL sent for
real) and compares what the user API shows with what the model sent, exactly.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import anyio
import pytest

from tests.integration.chat_browser import (
    ChatBrowser,
    NumberedReplies,
    assert_answered_exactly,
    follow,
)
from tests.integration.harness import Output, processes_with_env, wait_for_line
from tests.integration.test_chat_end_to_end import (
    Api,
    Stage,
    ready_worker,
    replies_finished,
    signed_in,
    stage,
    stop,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def open_session(api: Api, token: str, policy: dict[str, str] | None = None) -> str:
    worker_id, model = await ready_worker(api, token.split(":")[0], policy)
    created = await api.call("POST", f"/api/workers/{worker_id}/sessions", {"model": model}, 201)
    return str(created.get("session", created)["chat_session_id"])


async def machine_status(api: Api, token: str) -> str:
    found = await api.call("GET", f"/api/machines/{token.split(':')[0]}")
    return str(found.get("machine", found)["status"])


async def wait_for_status(api: Api, token: str, wanted: str, timeout: float = 90) -> None:
    with anyio.fail_after(timeout):
        while await machine_status(api, token) != wanted:
            await anyio.sleep(0.2)


async def send_while_down_then_restart(
    s: Stage, api: Api, session_id: str, model: NumberedReplies
) -> None:
    """Five numbered messages sent while the machine is down; on restart each answered once.

    No other message is sent after the restart. A browser follows the session
    throughout: what it shows, what is stored and what the model sent are equal.
    """
    prompts = [f"question {n}" for n in range(6)]
    browser = ChatBrowser()
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow, s.server.url, session_id, browser, lambda b: b.finished(6))
        for prompt in prompts[1:]:
            sent = await api.call(
                "POST", f"/api/sessions/{session_id}/messages", {"content": prompt}, 201
            )
            assert sent["queued"] is True, sent
        restarted = Output(s.worker())
        try:
            restarted.wait_for(r"Machine .* is online")
            with anyio.fail_after(90):
                while not browser.finished(6):
                    await anyio.sleep(0.05)
        finally:
            stop(restarted.process)
    assert restarted.process.returncode == 0, restarted.text
    listed = await api.call("GET", f"/api/sessions/{session_id}/messages")
    assert [m["content"] for m in listed["messages"] if m["role"] == "user"] == prompts
    stored = [m for m in listed["messages"] if m["role"] == "assistant"]
    assert_answered_exactly(prompts, model, browser, stored)


async def test_messages_sent_while_the_machine_was_stopped_are_answered_after_restart(
    tmp_path: Path,
) -> None:
    """SIGTERM, five messages queued, restart: all five answered in order, none left pending."""
    model = NumberedReplies(tokens=30)
    with stage(tmp_path, reply=model, delta_delay=0.01) as s:
        first = s.worker()
        lines: list[str] = []
        try:
            wait_for_line(first, r"Machine .* is online", lines)
            async with signed_in(s.server) as api:
                session_id = await open_session(api, s.token)
                await api.call(
                    "POST", f"/api/sessions/{session_id}/messages", {"content": "question 0"}, 201
                )
                await api.stream(session_id, replies_finished(1))
                first.send_signal(signal.SIGTERM)
                assert first.wait(timeout=30) == 0
                await wait_for_status(api, s.token, "offline", timeout=5)
                await send_while_down_then_restart(s, api, session_id, model)
        finally:
            stop(first)


async def test_messages_sent_after_a_killed_machine_went_offline_are_answered_after_restart(
    tmp_path: Path,
) -> None:
    """SIGKILL, offline once its socket closed, five messages queued, restart: all answered."""
    model = NumberedReplies(tokens=30)
    with stage(tmp_path, reply=model, delta_delay=0.01) as s:
        first = s.worker()
        lines: list[str] = []
        try:
            wait_for_line(first, r"Machine .* is online", lines)
            async with signed_in(s.server) as api:
                session_id = await open_session(api, s.token)
                await api.call(
                    "POST", f"/api/sessions/{session_id}/messages", {"content": "question 0"}, 201
                )
                await api.stream(session_id, replies_finished(1))
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                with anyio.fail_after(15):
                    while processes_with_env(str(s.home)):
                        await anyio.sleep(0.1)
                started = time.monotonic()
                # Its WebSocket closed: offline after the disconnect grace, well inside the
                # 45 s the stale-machine sweep would take.
                await wait_for_status(api, s.token, "offline", timeout=30)
                print(f"marked offline {time.monotonic() - started:.1f} s after SIGKILL")
                await send_while_down_then_restart(s, api, session_id, model)
        finally:
            if first.poll() is None:
                first.kill()


async def test_the_agents_shell_command_dies_with_a_killed_machine_process(
    tmp_path: Path,
) -> None:
    """SIGKILL while the agent's ``sleep 30; touch marker`` runs: the marker never appears.

    The sleep outlasts the wait for the machine's processes to end, so a loaded
    machine (CI's two cores) that is slow to see ``started`` or to reap cannot let
    the command finish on its own before the check: only killing it keeps the
    marker away.
    """
    root = tmp_path / "projects"  # the worker's folder: no permission needed to write there
    started, marker = root / "started", root / "marker"
    with stage(tmp_path, bash_command="touch started; sleep 30; touch marker") as s:
        machine = s.worker()
        lines: list[str] = []
        try:
            wait_for_line(machine, r"Machine .* is online", lines)
            async with signed_in(s.server) as api:
                # The worker's policy lets the agent's shell run without asking.
                session_id = await open_session(api, s.token, {"bash": "allow"})
                await api.call(
                    "POST", f"/api/sessions/{session_id}/messages", {"content": "run it"}, 201
                )
                with anyio.fail_after(60):
                    while not started.exists():
                        await anyio.sleep(0.05)
                machine.send_signal(signal.SIGKILL)
                machine.wait(timeout=10)
                # Once nothing of the machine's is left, nothing can create the marker.
                with anyio.fail_after(25):
                    while processes_with_env(str(s.home)):
                        await anyio.sleep(0.05)
        finally:
            if machine.poll() is None:
                machine.kill()
    assert not marker.exists()

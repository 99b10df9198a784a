"""Faults of the machine process with real parts: server, ``worker start``, opencode, fake model.

Each test stops or kills the real machine process (SIGTERM / SIGKILL sent for
real) and compares what the user API shows with what the model sent, exactly.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import attrs
import pytest

from tests.integration.chat_browser import (
    ChatBrowser,
    NumberedReplies,
    assert_answered_exactly,
    follow,
)
from tests.integration.chat_stage import (
    Api,
    Stage,
    machine_online,
    open_session,
    replies_finished,
    stage,
)
from tests.integration.harness import Output, stop

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def machine_status(api: Api, token: str) -> str:
    found = await api.call("GET", f"/api/machines/{token.split(':')[0]}")
    return str(found.get("machine", found)["status"])


async def wait_for_status(api: Api, token: str, wanted: str, timeout: float = 90) -> None:
    with anyio.fail_after(timeout):
        while await machine_status(api, token) != wanted:
            await anyio.sleep(0.2)


@attrs.frozen
class Stopped:
    """A stage whose machine answered "question 0" in a session, then was sent a signal."""

    stage: Stage
    model: NumberedReplies
    api: Api
    session_id: str
    #: The exit status of the signalled machine process.
    status: int


@asynccontextmanager
async def stopped_after_one_answer(tmp_path: Path, signum: int) -> AsyncIterator[Stopped]:
    """Numbered replies; the machine answers "question 0" in a new session, then gets ``signum``."""
    model = NumberedReplies(tokens=30)
    with stage(tmp_path, reply=model, delta_delay=0.01) as s:
        async with machine_online(s) as online:
            session_id = await open_session(online.api, s.token)
            await online.api.send(session_id, "question 0")
            await online.api.stream(session_id, replies_finished(1))
            online.machine.send_signal(signum)
            status = online.machine.wait(timeout=30)
            yield Stopped(s, model, online.api, session_id, status)


async def send_while_down_then_restart(down: Stopped) -> None:
    """Five numbered messages sent while the machine is down; on restart each answered once.

    No other message is sent after the restart. A browser follows the session
    throughout: what it shows, what is stored and what the model sent are equal.
    """
    prompts = [f"question {n}" for n in range(6)]
    browser = ChatBrowser()
    session_id = down.session_id
    async with anyio.create_task_group() as tg:
        tg.start_soon(follow, down.stage.server.url, session_id, browser, lambda b: b.finished(6))
        for prompt in prompts[1:]:
            sent = await down.api.send(session_id, prompt)
            assert sent["queued"] is True, sent
        restarted = Output(down.stage.worker())
        try:
            restarted.wait_for(r"Machine .* is online")
            with anyio.fail_after(90):
                while not browser.finished(6):
                    await anyio.sleep(0.05)
        finally:
            stop(restarted.process)
    assert restarted.process.returncode == 0, restarted.text
    listed = await down.api.call("GET", f"/api/sessions/{session_id}/messages")
    assert [m["content"] for m in listed["messages"] if m["role"] == "user"] == prompts
    stored = [m for m in listed["messages"] if m["role"] == "assistant"]
    assert_answered_exactly(prompts, down.model, browser, stored)


async def test_messages_sent_while_the_machine_was_stopped_are_answered_after_restart(
    tmp_path: Path,
) -> None:
    """SIGTERM, five messages queued, restart: all five answered in order, none left pending."""
    async with stopped_after_one_answer(tmp_path, signal.SIGTERM) as down:
        assert down.status == 0
        await wait_for_status(down.api, down.stage.token, "offline", timeout=5)
        await send_while_down_then_restart(down)


async def test_messages_sent_after_a_killed_machine_went_offline_are_answered_after_restart(
    tmp_path: Path,
) -> None:
    """SIGKILL, offline once its socket closed, five messages queued, restart: all answered."""
    async with stopped_after_one_answer(tmp_path, signal.SIGKILL) as down:
        await down.stage.machine_gone(timeout=15)
        started = time.monotonic()
        # Its WebSocket closed: offline after the disconnect grace, well inside the
        # 45 s the stale-machine sweep would take.
        await wait_for_status(down.api, down.stage.token, "offline", timeout=30)
        print(f"marked offline {time.monotonic() - started:.1f} s after SIGKILL")
        await send_while_down_then_restart(down)


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
        async with machine_online(s) as online:
            # The worker's policy lets the agent's shell run without asking.
            session_id = await open_session(online.api, s.token, {"bash": "allow"})
            await online.api.send(session_id, "run it")
            with anyio.fail_after(60):
                while not started.exists():
                    await anyio.sleep(0.05)
            online.machine.send_signal(signal.SIGKILL)
            online.machine.wait(timeout=10)
            # Once nothing of the machine's is left, nothing can create the marker.
            await s.machine_gone(timeout=25)
    assert not marker.exists()

"""Machine processes started twice, and the server stopped, with real processes.

The server is ``orchestrator serve``, each machine a real ``orchestrator worker
start`` without a terminal, with real opencode against the fake model. Every
reply is made of numbered tokens; what the model sent, what a browser's stream
showed and what was stored are compared exactly.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.integration.chat_browser import (
    ChatBrowser,
    NumberedReplies,
    assert_answered_exactly,
    follow,
)
from tests.integration.chat_stage import Api, open_session, signed_in, stage, worker_ready
from tests.integration.faults import until
from tests.integration.harness import NEEDS_OPENCODE, Output, stop

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]


async def _stored_replies(api: Api, session_id: str) -> list[dict[str, Any]]:
    listed = await api.call("GET", f"/api/sessions/{session_id}/messages")
    return [m for m in listed["messages"] if m["role"] == "assistant"]


async def test_a_second_machine_process_waits_as_standby_and_takes_over_when_the_first_dies(
    tmp_path: Path,
) -> None:
    """Same token twice: the second waits, replies stay whole; SIGKILL the first, it answers."""
    model = NumberedReplies(tokens=30)
    with stage(tmp_path, reply=model, delta_delay=0.01) as s:
        first = Output(s.worker())
        second: Output | None = None
        try:
            first.wait_for(r"Machine .* is online")
            async with signed_in(s.server) as api:
                session_id = await open_session(api, s.token)
                second = Output(s.worker())
                second.wait_for(r"Another machine process is already running.*Waiting")
                browser = ChatBrowser()
                prompts = [f"q{n}" for n in range(1, 5)]
                async with anyio.create_task_group() as tg:
                    tg.start_soon(follow, s.server.url, session_id, browser, lambda b: False)
                    for prompt in prompts[:3]:
                        await api.send(session_id, prompt)
                    await until(lambda: browser.finished(3), 90)
                    # The standby never went online, so it never fought the first.
                    assert second.process.poll() is None
                    assert "is online" not in second.text
                    first.process.send_signal(signal.SIGKILL)
                    first.process.wait(timeout=10)
                    await api.send(session_id, "q4")
                    killed = time.monotonic()
                    second.wait_for(r"Machine .* is online", timeout=60)
                    await until(lambda: browser.finished(4), 90)
                    print(f"standby answered {time.monotonic() - killed:.1f} s after the SIGKILL")
                    tg.cancel_scope.cancel()
                stored = await _stored_replies(api, session_id)
                assert_answered_exactly(prompts, model, browser, stored)
        finally:
            for output in (first, second):
                if output is not None:
                    stop(output.process)
        assert second is not None
        assert second.process.returncode == 0, second.text


async def test_the_server_stops_promptly_on_sigterm_with_a_machine_and_browsers_connected(
    tmp_path: Path,
) -> None:
    """SIGTERM mid-reply, machine WebSockets and a browser stream open: serve exits 0 soon."""
    async with worker_ready(tmp_path, reply=NumberedReplies(tokens=400), delta_delay=0.05) as ready:
        session_id = await ready.open_session()
        browser = ChatBrowser()
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow, ready.stage.server.url, session_id, browser, lambda b: False)
            await ready.api.send(session_id, "q1")
            await until(lambda: len(browser.sequences) >= 10, 90)
            ready.stage.server.process.send_signal(signal.SIGTERM)
            # aiohttp waits up to 60 s for open handlers; none may hold it up.
            code = await anyio.to_thread.run_sync(lambda: ready.stage.server.process.wait(20))
            tg.cancel_scope.cancel()
    assert code == 0, "".join(ready.stage.server.lines)

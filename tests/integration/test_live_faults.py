"""Faults on the live path, real processes: ``orchestrator serve``, ``worker start``, opencode.

Real opencode streams a reply of unique numbered words from the fake model; a
browser-like SSE client follows the session, reconnecting with Last-Event-ID
(and starting over on a ``snapshot`` event, as the chat page does). Whatever is
killed, the text the browser ends with and the stored reply are the same, with
every character once and in order.
"""

from __future__ import annotations

import subprocess
from contextlib import ExitStack
from pathlib import Path

import anyio
import pytest

from tests.integration.faults import (
    Browser,
    follow,
    kill,
    numbered_words,
    start_turn,
    stored_reply,
    until,
)
from tests.integration.harness import running_server
from tests.integration.test_chat_end_to_end import (  # noqa: F401 -- a fixture
    _needs_opencode,
    stage,
    stop,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("_needs_opencode")]

REPLY = numbered_words(300)


@pytest.mark.parametrize("killed", ["server", "machine", "both"])
async def test_a_kill_mid_turn_leaves_browser_and_store_with_each_character_once(
    tmp_path: Path, killed: str
) -> None:
    """SIGKILL of the server, the machine process or both mid-turn: browser text == stored text."""
    workers: list[subprocess.Popen[str]] = []
    with stage(tmp_path, reply=REPLY, delta_delay=0.02) as s, ExitStack() as restarted:
        try:
            session_id = await start_turn(s, workers)
            browser = Browser()
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, s.server.url, session_id, browser)
                await until(lambda: browser.text.count(" ") >= 40)
                if killed in ("server", "both"):
                    kill(s.server.process)
                if killed in ("machine", "both"):
                    kill(workers[-1])
                if killed in ("server", "both"):
                    s.server = restarted.enter_context(
                        running_server(s.server.data_dir, s.server.port)
                    )
                if killed in ("machine", "both"):
                    workers.append(s.worker())
                await until(lambda: browser.done, 120)
            stored = await stored_reply(s, session_id)
            if killed == "server":
                assert stored["status"] == "completed"
                assert stored["content"] == REPLY
            else:
                assert stored["status"] == "interrupted"
                assert REPLY.startswith(stored["content"])
                if killed == "machine":  # what the server held when the machine died is kept
                    assert stored["content"].count(" ") >= 40
            assert browser.text == stored["content"]
        finally:
            for worker in workers:
                stop(worker)

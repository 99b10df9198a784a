"""Faults on the live path, real processes: ``orchestrator serve``, ``worker start``, opencode.

Real opencode streams a reply of unique numbered words from the fake model; a
browser-like SSE client follows the session, reconnecting with Last-Event-ID
(and starting over on a ``snapshot`` event, as the chat page does). Whatever is
killed, the text the browser ends with and the stored reply are the same, with
every character once and in order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.faults import kill, numbered_words, stored_reply, watched_reply
from tests.integration.harness import NEEDS_OPENCODE

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]

REPLY = numbered_words(300)


@pytest.mark.parametrize("killed", ["server", "machine", "both"])
async def test_a_kill_mid_turn_leaves_browser_and_store_with_each_character_once(
    tmp_path: Path, killed: str
) -> None:
    """SIGKILL of the server, the machine process or both mid-turn: browser text == stored text."""
    async with watched_reply(tmp_path, REPLY) as turn:
        if killed in ("server", "both"):
            kill(turn.stage.server.process)
        if killed in ("machine", "both"):
            kill(turn.machine)
        if killed in ("server", "both"):
            turn.restart_server()
        if killed in ("machine", "both"):
            turn.workers.append(turn.stage.worker())
        await turn.until_done(120)
        stored = await stored_reply(turn.stage, turn.session_id)
        if killed == "server":
            assert stored["status"] == "completed"
            assert stored["content"] == REPLY
        else:
            assert stored["status"] == "interrupted"
            assert REPLY.startswith(stored["content"])
            if killed == "machine":  # what the server held when the machine died is kept
                assert stored["content"].count(" ") >= 40
        assert turn.browser.text == stored["content"]

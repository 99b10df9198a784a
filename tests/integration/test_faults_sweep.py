"""Replies whose machine vanished without a word, real processes: ended by the server.

A machine process frozen by SIGSTOP keeps its sockets open but answers
nothing; one killed while the server was down never reconnects. Either way the
server ends its streaming reply as interrupted, with the text it had kept, and
a browser and the store agree on that text word for word.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.integration.faults import chunks_for, kill, numbered_words, stored_reply, watched_reply
from tests.integration.harness import NEEDS_OPENCODE

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]

REPLY = numbered_words(600)


async def test_a_frozen_machines_reply_is_ended_interrupted_with_its_text(
    tmp_path: Path,
) -> None:
    """Machine SIGSTOPped past its deadline: reply interrupted, text kept; SIGCONT adds nothing."""
    async with watched_reply(tmp_path, REPLY) as turn:
        os.kill(turn.machine.pid, signal.SIGSTOP)
        try:
            await turn.until_done(80)
        finally:
            os.kill(turn.machine.pid, signal.SIGCONT)
        stored = await turn.assert_exact(REPLY, status="interrupted")
        assert stored["content"].count(" ") >= 40
        # Back from the freeze, the machine finds its reply ended: the stream adds nothing.
        assert turn.browser.last is not None
        url, session_id = turn.stage.server.url, turn.session_id
        assert await chunks_for(url, session_id, turn.browser.last, 5) == []
        assert (await stored_reply(turn.stage, session_id))["content"] == stored["content"]


async def test_a_reply_whose_machine_died_while_the_server_was_down_is_swept(
    tmp_path: Path,
) -> None:
    """Machine killed while the server is down: after restart the sweep ends its reply."""
    async with watched_reply(tmp_path, REPLY) as turn:
        turn.stage.server.process.send_signal(signal.SIGTERM)
        assert turn.stage.server.process.wait(timeout=30) == 0
        kill(turn.machine)
        turn.restart_server()
        await turn.until_done(80)
        stored = await turn.assert_exact(REPLY, status="interrupted")
        assert stored["content"].count(" ") >= 40

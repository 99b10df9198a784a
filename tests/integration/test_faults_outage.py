"""Backend outages longer than 30 s mid-reply, real processes: the server down, then back.

The machine process keeps every event the server has not acknowledged, for as
long as it takes, and sends it again once the server is back; the server skips
what it already stored. So a reply that finishes, or that the user stops, after
a long outage keeps its text whole, and a browser that watched through the
outage catches up with every word exactly once.
"""

from __future__ import annotations

import signal
from pathlib import Path

import anyio
import pytest

from tests.integration.chat_stage import (
    signed_in,
)
from tests.integration.faults import kill, numbered_words, until, watched_reply
from tests.integration.harness import NEEDS_OPENCODE

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]


async def test_a_reply_outlasting_a_40_second_server_outage_is_stored_whole(
    tmp_path: Path,
) -> None:
    """Server SIGKILLed mid-reply, back after 40 s: the reply completes, each word once."""
    reply = numbered_words(600)
    async with watched_reply(tmp_path, reply) as turn:
        kill(turn.stage.server.process)
        await anyio.sleep(40)
        turn.restart_server()
        await turn.until_done(60)
        await turn.assert_exact(reply)


async def test_a_reply_stopped_after_a_40_second_server_outage_keeps_its_text_without_a_hole(
    tmp_path: Path,
) -> None:
    """Server SIGKILLed mid-reply, back after 40 s, then Stop: the text kept has no hole."""
    reply = numbered_words(1000)
    async with watched_reply(tmp_path, reply, delta_delay=0.08, shown=20) as turn:
        seen = turn.browser.words
        kill(turn.stage.server.process)
        await anyio.sleep(40)
        turn.restart_server()
        # The machine is back and has sent again what it kept through the outage.
        await until(lambda: turn.browser.words > seen + 100, 60)
        async with signed_in(turn.stage.server) as api:
            await api.call("POST", f"/api/sessions/{turn.session_id}/abort", None)
        await turn.until_done(60)
        stored = await turn.assert_exact(reply, status="aborted")
        assert stored["content"].count(" ") > seen + 100


async def test_a_browser_watching_through_a_60_second_outage_gets_each_word_once(
    tmp_path: Path,
) -> None:
    """Server stopped 60 s mid-reply: the watching browser resumes (Last-Event-ID) exactly."""
    reply = numbered_words(600)
    async with watched_reply(tmp_path, reply) as turn:
        turn.stage.server.process.send_signal(signal.SIGTERM)
        assert turn.stage.server.process.wait(timeout=30) == 0
        connections = turn.browser.connections
        await anyio.sleep(60)
        turn.restart_server()
        await turn.until_done(60)
        assert turn.browser.connections > connections  # it did reconnect, and resumed
        assert turn.browser.snapshots == []  # from where it was, not from the start
        await turn.assert_exact(reply)

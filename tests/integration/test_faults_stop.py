"""SIGSTOP mid-reply, real processes: the server, the machine process, opencode, then SIGCONT.

Each test freezes one real process while opencode streams a reply of numbered
words from the fake model and a browser-like client follows the session; after
SIGCONT the reply ends, and the browser's text, the stored reply and the stored
chunk events equal what the model sent, each word once and in order.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from tests.integration.faults import Turn, numbered_words, watched_reply
from tests.integration.harness import NEEDS_OPENCODE, processes_with_env

pytestmark = [pytest.mark.anyio, pytest.mark.slow, NEEDS_OPENCODE]

REPLY = numbered_words(600)


@contextmanager
def frozen(pids: list[int]) -> Iterator[None]:
    """The processes stopped (SIGSTOP) for the block, continued (SIGCONT) after it."""
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def frozen_pids(turn: Turn, part: str) -> list[int]:
    """The server, the machine process, or opencode and whatever it runs."""
    if part == "server":
        return [turn.stage.server.process.pid]
    if part == "machine":
        return [turn.machine.pid]
    # The sandbox's processes other than the machine process: opencode and its children.
    return [pid for pid in processes_with_env(str(turn.stage.home)) if pid != turn.machine.pid]


@pytest.mark.parametrize(("part", "seconds"), [("server", 20), ("machine", 15), ("opencode", 15)])
async def test_a_frozen_process_mid_reply_loses_doubles_and_reorders_nothing(
    tmp_path: Path, part: str, seconds: float
) -> None:
    """SIGSTOP of the server, the machine process or opencode mid-reply, SIGCONT: exact reply."""
    async with watched_reply(tmp_path, REPLY) as turn:
        with frozen(frozen_pids(turn, part)):
            await anyio.sleep(seconds)
        await turn.until_done()
        await turn.assert_exact(REPLY)
        assert len(turn.stage.model.chat_requests) == 1  # the model was asked, and answered, once

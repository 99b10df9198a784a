"""SIGSTOP mid-reply, real processes: the server, the machine process, opencode, then SIGCONT.

Each test freezes one real process while opencode streams a reply of numbered
words from the fake model and a browser-like client follows the session; after
SIGCONT the reply ends, and the browser's text, the stored reply and the stored
chunk events equal what the model sent, each word once and in order.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from tests.integration.faults import (
    Browser,
    assert_exact,
    follow,
    numbered_words,
    start_turn,
    until,
)
from tests.integration.harness import processes_with_env
from tests.integration.test_chat_end_to_end import (  # noqa: F401 -- a fixture
    _needs_opencode,
    stage,
    stop,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("_needs_opencode")]

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


def opencode_processes(home: Path, machine: subprocess.Popen[str]) -> list[int]:
    """opencode and whatever it runs: the sandbox's processes other than the machine process."""
    return [pid for pid in processes_with_env(str(home)) if pid != machine.pid]


@pytest.mark.parametrize(
    ("frozen_part", "seconds"), [("server", 20), ("machine", 15), ("opencode", 15)]
)
async def test_a_frozen_process_mid_reply_loses_doubles_and_reorders_nothing(
    tmp_path: Path, frozen_part: str, seconds: float
) -> None:
    """SIGSTOP of the server, the machine process or opencode mid-reply, SIGCONT: exact reply."""
    workers: list[subprocess.Popen[str]] = []
    with stage(tmp_path, reply=REPLY, delta_delay=0.02) as s:
        try:
            session_id = await start_turn(s, workers)
            browser = Browser()
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, s.server.url, session_id, browser)
                await until(lambda: browser.words >= 40)
                pids = {
                    "server": [s.server.process.pid],
                    "machine": [workers[-1].pid],
                    "opencode": opencode_processes(s.home, workers[-1]),
                }[frozen_part]
                with frozen(pids):
                    await anyio.sleep(seconds)
                await until(lambda: browser.done, 90)
            await assert_exact(s, session_id, browser, REPLY)
            assert len(s.model.chat_requests) == 1  # the model was asked, and answered, once
        finally:
            for worker in workers:
                stop(worker)

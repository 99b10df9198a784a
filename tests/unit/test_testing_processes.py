"""Stopping a test's helper subprocess: terminated politely, killed when it will not go."""

from __future__ import annotations

import subprocess
import sys

from orchestrator.testing.processes import stop_process

STUBBORN = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_process_that_ends_on_sigterm_is_terminated() -> None:
    """A process that honours SIGTERM ends by it."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    stop_process(process)
    assert process.returncode == -15


def test_a_process_that_ignores_sigterm_is_killed() -> None:
    """A process that ignores SIGTERM past the timeout is killed."""
    process = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE)
    assert process.stdout is not None
    assert process.stdout.readline() == b"ready\n"
    stop_process(process, timeout=0.2)
    process.stdout.close()
    assert process.returncode == -9

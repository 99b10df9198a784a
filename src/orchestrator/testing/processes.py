"""Helper subprocesses of tests and benchmarks: stopping one, a stand-in machine process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from typing import Any


def stop_process(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    """Terminate ``process`` and wait for it; kill it if it outlives ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launching_machine(
    command: Sequence[str], *, new_session: bool = False
) -> subprocess.Popen[Any]:
    """A stand-in machine process: it starts ``command`` under the reaper (as the machine
    process starts opencode), then waits a minute to be killed."""
    launcher = (
        "import subprocess, time\n"
        "from orchestrator.adapters.system import launch_command\n"
        f"subprocess.Popen(launch_command({list(command)!r}), start_new_session={new_session!r})\n"
        "time.sleep(60)\n"
    )
    return subprocess.Popen([sys.executable, "-c", launcher])  # noqa: S603 (this interpreter)

"""Stopping a helper subprocess (a stand-in server) of a test or benchmark."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    """Terminate ``process`` and wait for it; kill it if it outlives ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

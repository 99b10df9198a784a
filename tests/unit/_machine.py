"""A machine process set up for unit tests: quick heartbeats and retries."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.application.machine_process import MachineProcess
from orchestrator.application.retry import Backoff
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.ports import MachineBackend


def quick_machine_process(
    backend: MachineBackend, token: MachineToken, root: Path, lines: list[str]
) -> MachineProcess:
    """A machine process beating every 10 ms, retrying within 10 ms, reporting into ``lines``."""
    return MachineProcess(
        backend,
        token,
        root,
        heartbeat_interval=timedelta(milliseconds=10),
        backoff=Backoff(base=0.001, cap=0.01),
        report=lines.append,
    )

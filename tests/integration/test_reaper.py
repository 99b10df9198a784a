"""The reaper: a command's whole process tree dies with the machine process or with the command."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.adapters.system import launch_command
from orchestrator.testing.processes import launching_machine

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

#: Starts a grandchild in its own session (as a tool's detached command would), writes
#: its pid, and waits.
DETACHED = 'setsid sh -c "sleep 30; touch {marker}" & echo $! > {pids}; wait'


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def read_pid(path: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.02)
    return int(path.read_text())


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} outlived its machine process"
        time.sleep(0.02)


def test_a_sigkilled_parent_takes_the_whole_tree_with_it(tmp_path: Path) -> None:
    """SIGKILL of the launching process kills even a grandchild in its own session."""
    pids, marker = tmp_path / "pids", tmp_path / "marker"
    script = DETACHED.format(marker=marker, pids=pids)
    machine = launching_machine(["/bin/sh", "-c", script], new_session=True)
    try:
        grandchild = read_pid(pids)
        assert alive(grandchild)
        machine.send_signal(signal.SIGKILL)
        machine.wait(timeout=10)
        wait_gone(grandchild)
    finally:
        if machine.poll() is None:
            machine.kill()
    assert not marker.exists()


def test_what_a_finished_command_left_running_is_killed_and_its_status_kept(
    tmp_path: Path,
) -> None:
    """The command exits 3 leaving a background job: the job is killed, the status is 3."""
    pids, marker = tmp_path / "pids", tmp_path / "marker"
    script = f'setsid sh -c "sleep 30; touch {marker}" & echo $! > {pids}; exit 3'
    finished = subprocess.run(launch_command(["/bin/sh", "-c", script]), timeout=30, check=False)
    assert finished.returncode == 3
    wait_gone(read_pid(pids))
    assert not marker.exists()


def test_sigterm_reaches_the_command_and_a_killed_command_reports_its_signal(
    tmp_path: Path,
) -> None:
    """SIGTERM to the reaper is passed on; the command's death by signal is 128 + signal."""
    process = subprocess.Popen(launch_command(["/bin/sleep", "30"]))
    deadline = time.monotonic() + 10
    while not children_of(process.pid):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.02)
    [command] = children_of(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 128 + signal.SIGTERM
    assert not alive(command)


def children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            found.append(int(entry.name))
    return found

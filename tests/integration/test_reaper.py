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


#: A process whose main thread exits while another thread keeps the child it started, as
#: a multithreaded program being killed does (opencode: Bun's threads end one by one). In
#: between, ``/proc`` shows the process as a zombie though its child still runs.
ZOMBIE_LEADER = """
import ctypes, subprocess, sys, threading, time
def start():
    child = subprocess.Popen(["/bin/sh", "-c", "sleep 30; touch " + sys.argv[2]])
    open(sys.argv[1], "w").write(str(child.pid))
    time.sleep(60)
threading.Thread(target=start).start()
time.sleep(0.5)
ctypes.CDLL(None).pthread_exit(None)
"""


def test_the_child_of_a_process_that_looks_like_a_zombie_dies_with_the_parent(
    tmp_path: Path,
) -> None:
    """A command shown as a zombie while a thread of it lives: its child is killed all the same."""
    pids, marker = tmp_path / "pids", tmp_path / "marker"
    machine = launching_machine([sys.executable, "-c", ZOMBIE_LEADER, str(pids), str(marker)])
    try:
        grandchild = read_pid(pids)
        time.sleep(1)  # the command's main thread has exited
        [reaper] = children_of(machine.pid)
        [command] = children_of(reaper)
        machine.send_signal(signal.SIGKILL)
        machine.wait(timeout=10)
        for pid in (grandchild, command, reaper):
            wait_gone(pid)
    finally:
        if machine.poll() is None:
            machine.kill()
    assert not marker.exists()


def test_a_parent_death_signal_sent_again_and_again_kills_everything_once(
    tmp_path: Path,
) -> None:
    """The kernel signals again on each hand-over between the dying parent's threads: the
    reaper kills the whole tree and exits however often the signal comes."""
    pids, marker = tmp_path / "pids", tmp_path / "marker"
    script = DETACHED.format(marker=marker, pids=pids)
    process = subprocess.Popen(launch_command(["/bin/sh", "-c", script]))
    try:
        grandchild = read_pid(pids)
        for _ in range(20):
            process.send_signal(signal.SIGUSR1)
        assert process.wait(timeout=10) == 128 + signal.SIGKILL
        wait_gone(grandchild)
    finally:
        if process.poll() is None:
            process.kill()
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

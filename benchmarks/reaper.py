"""What the reaper costs and how fast it tears a tree down (Linux; bounded, ~5 s).

    python benchmarks/reaper.py [--runs 20]

Prints: the start cost of a command under the reaper vs the previous
exec-through wrapper (PR_SET_PDEATHSIG only) vs bare; the reaper's resident
memory; and the time from SIGKILL of the launching process until a 3-level
tree (one grandchild in its own session) is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.adapters.system import launch_command
from orchestrator.testing.processes import launching_machine

#: The wrapper launch_command used before the reaper: PR_SET_PDEATHSIG, then exec.
EXEC_THROUGH = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def run_ms(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def teardown_ms(tmp: Path) -> float:
    pids = tmp / "pids"
    pids.unlink(missing_ok=True)
    script = f"setsid sleep 30 & echo $! > {pids}; wait"
    machine = launching_machine(["/bin/sh", "-c", script])
    deadline = time.monotonic() + 10
    while not pids.exists() or not pids.read_text().strip():
        if time.monotonic() > deadline:
            machine.kill()
            raise SystemExit("the command did not start")
        time.sleep(0.01)
    grandchild = int(pids.read_text())
    started = time.perf_counter()
    machine.send_signal(signal.SIGKILL)
    machine.wait()
    while Path(f"/proc/{grandchild}").exists():
        state = Path(f"/proc/{grandchild}/stat").read_text().rsplit(") ", 1)[1][0]
        if state == "Z" or time.perf_counter() - started > 10:
            break
        time.sleep(0.001)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    true = "/bin/true"
    print(f"start + exit of /bin/true, median of {runs}:")
    print(f"  bare                     {run_ms([true], runs):6.1f} ms")
    before = run_ms([sys.executable, "-c", EXEC_THROUGH, true], runs)
    print(f"  exec-through (before)    {before:6.1f} ms")
    print(f"  reaper (now)             {run_ms(launch_command([true]), runs):6.1f} ms")
    sleeper = subprocess.Popen(launch_command(["/bin/sleep", "5"]))
    time.sleep(0.3)
    print(f"reaper resident memory     {rss_kb(sleeper.pid) / 1024:6.1f} MB")
    sleeper.terminate()
    sleeper.wait()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"reaper-bench-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    samples = [teardown_ms(tmp) for _ in range(5)]
    print(f"SIGKILL to tree gone       {statistics.median(samples):6.1f} ms (median of 5)")
    (tmp / "pids").unlink(missing_ok=True)
    tmp.rmdir()


if __name__ == "__main__":
    main()

"""Time reading a turn's changes, undoing it and redoing it, on the real opencode.

Run from the repository root: ``python -m benchmarks.undo [--turns N]``. A git
worker folder gets a turn of the fake model that rewrites one file (1,000 lines);
then the adapter reads the turn's diff (as the machine does at turn end), reverts
the turn and unreverts it, N times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import anyio
from tests.integration.test_opencode_undo import git_worker

from orchestrator.adapters.opencode import find_opencode, open_opencode_runtime
from orchestrator.domain.agent import ModelRef, TurnFailed, TurnFinished
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from orchestrator.testing.fake_model import DEFAULT_MODEL, FakeModelServer, opencode_environment


async def measure(root: Path, turns: int) -> dict[str, list[float]]:
    """Seconds of each step, per turn."""
    worker = git_worker(root / "worker")
    model = FakeModelServer(after_tool_reply="Done.")
    times: dict[str, list[float]] = {"turn diff": [], "undo": [], "redo": []}
    policy = PermissionPolicy(edit=PermissionAction.ALLOW)
    async with model:
        env = opencode_environment(root / "sandbox", model.base_url)
        async with open_opencode_runtime(binary=find_opencode(), env=env) as runtime:
            session = await runtime.open_session(worker, permission_policy=policy)
            for turn in range(turns):
                model.write_file = (str(worker / "notes.txt"), f"line {turn}\n" * 1000)
                await session.prompt("rewrite notes.txt", ModelRef.parse(DEFAULT_MODEL))
                async for event in session.events():
                    if isinstance(event, TurnFinished | TurnFailed):
                        break
                start = time.perf_counter()
                diff = await session.turn_diff()
                times["turn diff"].append(time.perf_counter() - start)
                if diff is None or not diff.files:
                    raise SystemExit("The turn changed no file: is git installed?")
                start = time.perf_counter()
                await session.revert(diff.agent_message_id)
                times["undo"].append(time.perf_counter() - start)
                start = time.perf_counter()
                await session.unrevert()
                times["redo"].append(time.perf_counter() - start)
    return times


def main() -> None:
    """Print the median and the slowest of each step."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=3)
    args = parser.parse_args()
    subprocess.run(["git", "--version"], check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as tmp:
        times = anyio.run(measure, Path(tmp), args.turns)
    for step, seconds in times.items():
        ms = [s * 1000 for s in seconds]
        print(f"{step}: median {statistics.median(ms):.0f} ms, slowest {max(ms):.0f} ms")


if __name__ == "__main__":
    main()

"""Compare the two opencode process policies: start latency, memory, time to first delta.

Run: ``python benchmarks/opencode_policies.py [--sessions 3]``. Uses the real
opencode binary (``find_opencode``) against the fake model server, in a
throw-away HOME. RSS is the sum of ``VmRSS`` over each opencode process tree.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import attrs

from orchestrator.adapters.opencode import (
    OpencodeRuntime,
    OpencodeSession,
    ProcessPolicy,
    open_opencode_runtime,
)
from orchestrator.domain.agent import ModelRef, TextDelta, TurnFailed, TurnFinished
from orchestrator.testing.fake_model import DEFAULT_MODEL, FakeModelServer, opencode_environment

MODEL = ModelRef.parse(DEFAULT_MODEL)


@attrs.define
class Result:
    policy: ProcessPolicy
    sessions: int
    open_first: float = 0.0
    open_rest: list[float] = attrs.field(factory=list)
    first_delta_first_prompt: list[float] = attrs.field(factory=list)
    first_delta_later: list[float] = attrs.field(factory=list)
    rss_idle_mb: float = 0.0
    rss_used_mb: float = 0.0
    processes: int = 0


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(pid: int, tree: dict[int, list[int]]) -> Iterator[int]:
    yield pid
    for child in tree.get(pid, []):
        yield from _tree(child, tree)


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the processes and all their descendants, in MB."""
    tree = _children()
    total_kb = 0
    for root in pids:
        for pid in _tree(root, tree):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kb += int(line.split()[1])
            except OSError:
                continue
    return total_kb / 1024


async def time_to_first_delta(session: OpencodeSession, text: str) -> float:
    start = time.perf_counter()
    await session.prompt(text, MODEL)
    first: float | None = None
    with anyio.fail_after(120):
        async for event in session.events():
            if isinstance(event, TextDelta) and first is None:
                first = time.perf_counter() - start
            if isinstance(event, TurnFailed):
                raise RuntimeError(event.reason)
            if isinstance(event, TurnFinished):
                break
    assert first is not None
    return first


async def measure(policy: ProcessPolicy, sessions: int, root: Path) -> Result:
    result = Result(policy, sessions)
    worker = root / "worker"
    worker.mkdir(parents=True)
    async with FakeModelServer(reply="A short reply of ten words for the benchmark run.") as model:
        env = opencode_environment(root / "sandbox", model.base_url)
        async with open_opencode_runtime(env=env, policy=policy) as runtime:
            opened = await _open_all(runtime, worker, sessions, result)
            await anyio.sleep(1.0)
            result.processes = len(runtime.server_pids())
            result.rss_idle_mb = rss_mb(runtime.server_pids())
            for session in opened:
                result.first_delta_first_prompt.append(
                    await time_to_first_delta(session, "First prompt")
                )
            for session in opened:
                for _ in range(3):
                    result.first_delta_later.append(
                        await time_to_first_delta(session, "Another prompt")
                    )
            result.rss_used_mb = rss_mb(runtime.server_pids())
    return result


async def _open_all(
    runtime: OpencodeRuntime, worker: Path, sessions: int, result: Result
) -> list[OpencodeSession]:
    opened = []
    for index in range(sessions):
        start = time.perf_counter()
        opened.append(await runtime.open_session(worker))
        elapsed = time.perf_counter() - start
        if index == 0:
            result.open_first = elapsed
        else:
            result.open_rest.append(elapsed)
    return opened


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:7.0f}" if values else "      -"


def table_lines(results: list[Result]) -> list[str]:
    """The comparison table, one string per line."""
    header = (
        f"{'policy':<12} {'sessions':>8} {'procs':>5} {'open 1st ms':>11} {'open next ms':>12} "
        f"{'1st delta ms':>12} {'later delta ms':>14} {'RSS idle MB':>11} {'RSS used MB':>11} "
        f"{'MB/session':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.policy:<12} {r.sessions:>8} {r.processes:>5} {r.open_first * 1000:>11.0f} "
            f"{_ms(r.open_rest):>12} {_ms(r.first_delta_first_prompt):>12} "
            f"{_ms(r.first_delta_later):>14} {r.rss_idle_mb:>11.0f} {r.rss_used_mb:>11.0f} "
            f"{r.rss_used_mb / r.sessions:>10.0f}"
        )
    lines.append("(open/delta columns are medians; RSS is summed over each process tree)")
    return lines


def print_table(results: list[Result]) -> None:
    print("\n".join(table_lines(results)))


async def measure_policies(sessions: int) -> list[Result]:
    """Measure every policy, each in its own throw-away directory."""
    results = []
    for policy in ProcessPolicy:
        with tempfile.TemporaryDirectory(prefix="opencode-bench-") as tmp:
            results.append(await measure(policy, sessions, Path(tmp)))
    return results


async def main(sessions: int) -> None:
    print_table(await measure_policies(sessions))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sessions", type=int, default=3, help="chat sessions per policy")
    args = parser.parse_args()
    anyio.run(main, args.sessions)

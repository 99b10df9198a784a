"""Time to the first character of the first message on a freshly started worker.

Run: ``python benchmarks/first_character.py [--rounds 2]`` (about 15 s a round
on an idle machine). Each round brings a new worker directory online the way
the machine process does (it reads the models), then opens a session and
times from sending the first message to the first text delta, with the real
opencode against the fake model (no delay between its deltas, so its own time
is a few milliseconds and not counted apart).

``before``: the models come from a temporary opencode that stops again, as
before the warm server, so the first message waits for a cold start.
``after``: the models come from the worker's shared server, which stays warm.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio
from opencode_policies import time_to_first_delta

from orchestrator.adapters.opencode import OpencodeRuntime, ProcessPolicy, open_opencode_runtime
from orchestrator.testing.fake_model import FakeModelServer, opencode_environment


async def first_character(runtime: OpencodeRuntime, worker: Path) -> float:
    """Seconds from opening a session and sending the first message to its first delta."""
    start = time.perf_counter()
    session = await runtime.open_session(worker)
    opened = time.perf_counter() - start
    first = await time_to_first_delta(session, "First message")
    await session.close()
    return opened + first


async def one_round(mode: str, base: Path, env: dict[str, str]) -> float:
    """Bring a fresh worker online in ``mode`` and time its first message."""
    worker = base / f"worker-{mode}"
    worker.mkdir()
    async with open_opencode_runtime(env=env) as runtime:
        if mode == "before":  # the old probe: a temporary server, stopped again
            async with open_opencode_runtime(env=env, policy=ProcessPolicy.PER_SESSION) as probe:
                await probe.list_models(worker)
        else:
            await runtime.list_models(worker)
        return await first_character(runtime, worker)


async def main(rounds: int) -> None:
    figures: dict[str, list[float]] = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="first-character-") as tmp:
        async with FakeModelServer(reply="A short reply for the benchmark.") as model:
            env = opencode_environment(Path(tmp) / "sandbox", model.base_url)
            for index in range(rounds):
                for mode in ("before", "after"):
                    base = Path(tmp) / f"round-{index}"
                    base.mkdir(exist_ok=True)
                    figures[mode].append(await one_round(mode, base, env))
    print(f"first character of the first message, {rounds} round(s), seconds")
    for mode, values in figures.items():
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"  {mode:6} median {statistics.median(values):6.2f}   ({shown})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, choices=range(1, 6))
    anyio.run(main, parser.parse_args().rounds)

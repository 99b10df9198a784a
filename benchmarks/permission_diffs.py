"""Time one read of a session's permission requests on SQLite, with and without edit diffs.

Run from the repository root: ``python benchmarks/permission_diffs.py [--requests 200]``.
The session stream and the inbox read a session's requests again on each of its
changes; an edit request carries its diff (up to ``MAX_DIFF_BYTES``), so a session
with many edits at the bound is the worst case for that read.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from orchestrator.adapters.embedded import open_backend
from orchestrator.domain.diffs import MAX_DIFF_BYTES
from orchestrator.domain.replies import PermissionAsk
from orchestrator.testing import FakeClock, PlainHasher, SequentialIds


async def measure(requests: int, diff: str, reads: int = 20) -> float:
    """Median milliseconds of one read of ``requests`` requests each carrying ``diff``."""
    with tempfile.TemporaryDirectory() as folder:
        backend = await open_backend(
            Path(folder) / "db", clock=FakeClock(), ids=SequentialIds(), hasher=PlainHasher()
        )
        try:
            alice = (await backend.create_user("alice", "hash")).user_id
            machine, token = await backend.create_machine(alice, "laptop")
            await backend.go_online(token, "/home/alice")
            worker = await backend.add_worker(alice, machine.machine_id, "repo", None)
            await backend.update_worker_models(token, worker.worker_id, ("fake/small",))
            session = await backend.start_session(alice, worker.worker_id, "fake/small")
            sent = await backend.send_message(alice, session.chat_session_id, "edit")
            reply = await backend.claim_message(token, sent.message_id)
            for i in range(requests):
                ask = PermissionAsk(
                    f"p{i}", "edit", "a.py", "a.py" if diff else "", diff, len(diff.encode())
                )
                await backend.record_permission(token, reply.message_id, ask)
            times = []
            for _ in range(reads):
                start = time.perf_counter()
                await backend.list_permissions(alice, session.chat_session_id, True)
                times.append((time.perf_counter() - start) * 1000)
            return statistics.median(times)
        finally:
            await backend.close()


def main() -> None:
    """Print the median read time without diffs and with diffs at the bound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    requests = parser.parse_args().requests
    for label, diff in (("no diffs", ""), (f"{MAX_DIFF_BYTES:,}-byte diffs", "+" * MAX_DIFF_BYTES)):
        ms = anyio.run(measure, requests, diff)
        print(f"{requests} requests, {label}: {ms:.1f} ms per read (median)")


if __name__ == "__main__":
    main()

"""What Convex bills: function calls of an idle setup per month, and per 1,000 streamed characters.

Counts the calls the real code makes against the loopback harness (the real
TypeScript functions behind Convex's HTTP API; each call is counted by the
harness). No deployment runs here, so the deployment's crons are counted from
their schedule in ``convex/crons.ts`` rather than observed. The re-runs of open
WebSocket subscriptions are counted with the real ``ConvexClient`` against the
harness's sync stand-in, which re-runs every open subscription after each
write: an upper bound (see "What it costs" in ``backend_convex/README.md``).

Documents written per 1,000 streamed characters are counted by the harness (every
insert, patch and delete of the functions, scheduled ones included).

Run from the repository root: ``python benchmarks/convex_cost.py`` (~30 s, needs
``backend_convex/node_modules``).
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import anyio

from orchestrator.adapters.convex import ClientTransport, ConvexBackend, HttpTransport
from orchestrator.adapters.system import SystemClock
from orchestrator.application.jobs import run_due_jobs
from orchestrator.application.machine_process import MachineProcess
from orchestrator.application.streaming import ChunkCoalescer, PartTextStream
from orchestrator.domain.ids import MachineToken, MessageId, UserId
from orchestrator.domain.parts import TextAppend, TextKind
from orchestrator.entrypoints.settings import (
    CONVEX_COALESCE_WINDOW,
    CONVEX_HEARTBEAT,
    CONVEX_SCHEDULER_TICK,
    MachineSettings,
    ServerSettings,
)
from orchestrator.testing.convex_harness import (
    ConvexHarness,
    new_server_secret,
    unavailable_reason,
)

MONTH = timedelta(days=30).total_seconds()
BEATS = 5
DELTA = "w0000042 "  # 9 characters, one every 10 ms, like benchmarks/relay.py's fake model
CRONS_BEFORE = {"machines:sweepStale": 30.0, "jobsScheduler:runDue": 60.0}
CRONS_NOW = {"machines:sweepStale": 60.0, "jobsScheduler:runDue": 60.0}


def per_month(seconds: float) -> float:
    return MONTH / seconds


async def main() -> None:
    if reason := unavailable_reason():
        sys.exit(reason)
    harness = ConvexHarness(server_secret=new_server_secret()).start()
    try:
        await measure(harness)
        await measure_documents(harness)
        await measure_reruns(harness)
    finally:
        harness.stop()


async def measure(harness: ConvexHarness) -> None:
    url = harness.new_deployment()
    backend = ConvexBackend(HttpTransport(url, timeout=10), server_secret=harness.server_secret)

    def counted() -> Counter[str]:
        return Counter(harness.calls(url))

    try:
        with tempfile.TemporaryDirectory() as root:
            alice, token, process = await _idle_machine(backend, Path(root))
            before = counted()
            for _ in range(BEATS):
                await process.beat()
            per_beat = sum((counted() - before).values()) / BEATS

        before = counted()
        await run_due_jobs(backend, SystemClock())
        per_tick = sum((counted() - before).values())

        old_machine = per_beat * per_month(MachineSettings().heartbeat_interval.total_seconds())
        new_machine = per_beat * per_month(CONVEX_HEARTBEAT.total_seconds())
        server = ServerSettings()
        old_server = per_month(server.sweep_interval.total_seconds()) + per_tick * per_month(
            server.scheduler_tick.total_seconds()
        )
        new_server = per_tick * per_month(CONVEX_SCHEDULER_TICK.total_seconds())
        old_crons = sum(per_month(s) for s in CRONS_BEFORE.values())
        new_crons = sum(per_month(s) for s in CRONS_NOW.values())
        print("Idle: one machine with two workers, plus the web server (30 days)")
        print(f"  calls per heartbeat (machine + 2 workers): {per_beat:.0f}")
        print(f"  calls per job-scheduler tick of the web server: {per_tick}")
        print(f"  {'':28} {'before':>12} {'now':>12}")
        for label, old, new in (
            ("machine heartbeats", old_machine, new_machine),
            ("web server sweep + jobs", old_server, new_server),
            ("deployment crons", old_crons, new_crons),
            ("total", old_machine + old_server + old_crons, new_machine + new_server + new_crons),
        ):
            print(f"  {label:28} {old:12,.0f} {new:12,.0f}")

        print("Streaming 1,000 characters (9-character deltas every 10 ms)")
        worker = next(iter(process.workers.values()))
        await backend.update_worker_models(token, worker.worker_id, ["fake/small"])
        for label, window in (("before", 0.05), ("now (Convex)", CONVEX_COALESCE_WINDOW)):
            session = await backend.start_session(alice, worker.worker_id, "fake/small")
            message = await backend.send_message(alice, session.chat_session_id, "hello")
            reply = await backend.claim_message(token, message.message_id)
            before = counted()
            writes, sent = await _stream(backend, token, reply.message_id, window)
            calls = sum((counted() - before).values())
            print(
                f"  {label:14} window {window * 1000:.0f} ms: {calls} calls"
                f" ({writes - 1} chunk writes + 1 completion) per {sent} characters"
            )
    finally:
        await backend.close()


async def measure_documents(harness: ConvexHarness) -> None:
    """Documents written per 1,000 characters as the machine streams a reply's text part."""
    url = harness.new_deployment()
    backend = ConvexBackend(HttpTransport(url, timeout=10), server_secret=harness.server_secret)
    try:
        alice = (await backend.create_user("alice", "hash")).user_id
        machine, token = await backend.create_machine(alice, "laptop")
        await backend.go_online(token, "/home/alice")
        worker = await backend.add_worker(alice, machine.machine_id, "repo", None)
        await backend.update_worker_models(token, worker.worker_id, ["fake/small"])
        session = await backend.start_session(alice, worker.worker_id, "fake/small")
        print("Documents written streaming a text part (9-character deltas every 10 ms)")
        for total in (1_000, 10_000):
            message = await backend.send_message(alice, session.chat_session_id, "hello")
            reply = await backend.claim_message(token, message.message_id)
            before = harness.documents_written(url)
            stream = PartTextStream(
                partial(_append_text, backend, token, reply.message_id),
                window=CONVEX_COALESCE_WINDOW,
            )
            async with stream:
                sent = 0
                while sent < total:
                    await stream.add("prt_1", TextKind.TEXT, sent, DELTA)
                    sent += len(DELTA)
                    await anyio.sleep(0.01)
            streamed = harness.documents_written(url) - before
            await backend.complete_message(token, reply.message_id, "x" * sent)
            written = harness.documents_written(url) - before
            # Each write is one chunk, deleted CHUNK_GRACE_MS after the reply ends (parts.ts):
            # counted here rather than waited for.
            total = written + stream.writes
            print(
                f"  {sent:6,} characters, {stream.writes} writes: {streamed} documents while"
                f" streaming, {written} with the reply's end, {total} with the chunks'"
                f" deletion a minute later ({total * 1000 / sent:.1f} per 1,000 characters)"
            )
    finally:
        await backend.close()


async def _append_text(
    backend: ConvexBackend,
    token: MachineToken,
    reply: MessageId,
    part_id: str,
    kind: TextKind,
    offset: int,
    piece: str,
) -> None:
    await backend.append_part_text(token, reply, TextAppend(part_id, offset, piece, kind))


async def _idle_machine(
    backend: ConvexBackend, root: Path
) -> tuple[UserId, MachineToken, MachineProcess]:
    """alice's machine, online at ``root`` with workers in ``a`` and ``b``, after its first beat."""
    alice = (await backend.create_user("alice", "hash")).user_id
    machine, token = await backend.create_machine(alice, "laptop")
    for directory in ("a", "b"):
        (root / directory).mkdir()
    await backend.go_online(token, str(root))
    for directory in ("a", "b"):
        await backend.add_worker(alice, machine.machine_id, directory, None)
    process = MachineProcess(backend, token, root, report=lambda _: None)
    process.workers = {w.worker_id: w for w in await backend.list_own_workers(token)}
    await process.beat()  # the first beat brings the workers online
    return alice, token, process


async def _stream(
    backend: ConvexBackend,
    token: MachineToken,
    reply: MessageId,
    window: float = CONVEX_COALESCE_WINDOW,
) -> tuple[int, int]:
    """Stream about 1,000 characters into ``reply`` and complete it: its writes and characters."""
    async with ChunkCoalescer(partial(backend.append_chunk, token, reply), window=window) as chunks:
        sent = 0
        while sent < 1000:
            await chunks.add(DELTA)
            sent += len(DELTA)
            await anyio.sleep(0.01)
    await backend.complete_message(token, reply, "x" * sent)
    return chunks.writes + 1, sent


async def measure_reruns(harness: ConvexHarness) -> None:
    """Re-runs of open subscriptions: the real ConvexClient against the sync stand-in."""
    url = harness.new_deployment(sync=True)
    backend = ConvexBackend(ClientTransport(url, timeout=10), server_secret=harness.server_secret)

    def counted() -> int:
        return sum(harness.calls(url).values())

    try:
        with tempfile.TemporaryDirectory() as root:
            alice, token, process = await _idle_machine(backend, Path(root))
            worker = next(iter(process.workers.values()))
            await backend.update_worker_models(token, worker.worker_id, ["fake/small"])
            session = await backend.start_session(alice, worker.worker_id, "fake/small")
            watches: list[AsyncIterator[object]] = [
                backend.watch_own_workers(token),  # the machine process
                backend.watch_work(token),
                backend.watch_commands(token),
                backend.watch_machines(alice),  # a browser on the machine list
                backend.watch_messages(alice, session.chat_session_id),  # and on the chat
                backend.watch_chunks(alice, session.chat_session_id, 0),
            ]
            async with anyio.create_task_group() as tasks:
                for watch in watches:
                    with anyio.fail_after(30):
                        await anext(watch)
                    tasks.start_soon(_drain, watch)
                await anyio.sleep(1)
                before = counted()
                for _ in range(BEATS):
                    await process.beat()
                await anyio.sleep(1)
                per_beat = (counted() - before - 3 * BEATS) / BEATS
                message = await backend.send_message(alice, session.chat_session_id, "hello")
                reply = await backend.claim_message(token, message.message_id)
                await anyio.sleep(1)
                before = counted()
                writes, _ = await _stream(backend, token, reply.message_id)
                await anyio.sleep(1)
                per_stream = counted() - before - writes
                tasks.cancel_scope.cancel()
        print(f"Subscription re-runs ({len(watches)} open: the machine's 3, a browser's 3)")
        print("  the harness's sync stand-in re-runs every open subscription after each write,")
        print("  so these are upper bounds; Convex re-runs only those whose reads a write touched")
        print(f"  per heartbeat (3 writes): at most {per_beat:.0f} re-runs")
        print(f"  per 1,000 streamed characters ({writes} writes): at most {per_stream} re-runs")
    finally:
        await backend.close()


async def _drain(values: AsyncIterator[object]) -> None:
    async for _ in values:
        pass


if __name__ == "__main__":
    anyio.run(main)

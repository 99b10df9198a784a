"""Per-delta CPU of the live relay over one long reply: does a delta cost more as the reply grows?

Run: ``python benchmarks/relay_long_reply.py [--chars 1000000] [--delta 50]`` (about
30 s; no opencode). ``orchestrator serve`` runs as a subprocess over a fresh SQLite
database; the machine's live outbox (``LiveOutbox``, what ``worker start --server``
sends reply text with) runs in this process over the real WebSocket, and a browser
reads the session's ``GET /api/sessions/{id}/stream`` here too. One reply of
``--chars`` characters goes out in deltas of ``--delta`` characters, in rounds of
:data:`ROUND` deltas; each round is waited for at the browser, so every tenth of the
reply is measured on its own. Per tenth it prints the server's CPU per delta (all
threads, ``/proc``) and the machine's (thread CPU inside ``LiveOutbox.send``), then
the ratio last tenth / first tenth: about 1 when a delta costs the same however long
the reply is, far above 1 when each delta re-copies the text so far (quadratic).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import anyio
import anyio.abc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_relay import PASSWORD, _free_port, _process, _wait_file_line, cpu_seconds

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.remote.live import LiveOutbox
from orchestrator.adapters.system import Argon2Hasher
from orchestrator.application import accounts
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.live import LiveText
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.testing.sqlite import open_test_backend

#: Deltas sent before waiting for the browser to have them all.
ROUND = 200
MODEL = "fake/model-a"


async def _setup(data: Path, root: Path) -> tuple[MachineToken, ChatMessage]:
    """A user, an online machine and worker, and a claimed (streaming) reply in a session."""
    backend = await open_test_backend(data / "orchestrator.sqlite3")
    try:
        user = await accounts.create_user(backend, Argon2Hasher(fast=True), "alice", PASSWORD)
        machine, token = await backend.create_machine(user.user_id, "bench")
        await backend.go_online(token, str(root))
        worker = await backend.add_worker(user.user_id, machine.machine_id, "repo", None)
        await backend.update_worker_models(token, worker.worker_id, [MODEL])
        await backend.worker_heartbeat(token, worker.worker_id)
        session = await backend.start_session(user.user_id, worker.worker_id, MODEL)
        asked = await backend.send_message(user.user_id, session.chat_session_id, "go")
        reply = await backend.claim_message(token, asked.message_id)
    finally:
        await backend.close()
    return token, reply


async def _browser(
    http: aiohttp.ClientSession, url: str, seen: list[int], ready: anyio.Event
) -> None:
    """Count the reply characters that reach the browser's SSE stream."""
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        assert response.status == 200, await response.text()
        ready.set()
        name = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "chunk":
                seen[0] += len(json.loads(line[6:])["chunk"])


async def _keep_alive(remote: RemoteMachineBackend, token: MachineToken) -> None:
    while True:
        await remote.heartbeat(token)
        await anyio.sleep(5)


async def measure(chars: int, delta: int) -> list[str]:
    """Stream one reply of ``chars`` characters; the report lines."""
    with tempfile.TemporaryDirectory(prefix="relay-long-") as raw:
        tmp = Path(raw)
        data, root = tmp / "data", tmp / "projects"
        data.mkdir()
        root.mkdir()
        token, reply = await _setup(data, root)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "ORCHESTRATOR_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
        serve = [sys.executable, "-m", "orchestrator", "serve", "--host", "127.0.0.1"]
        server_log = tmp / "server.log"
        async with _process(*serve, "--port", str(port), env=env, output=server_log) as server:
            await _wait_file_line(server_log, "running at", 60)
            async with (
                RemoteMachineBackend(base) as remote,
                aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
                anyio.create_task_group() as tg,
            ):
                login = {"username": "alice", "password": PASSWORD}
                async with http.post(f"{base}/api/login", json=login) as answer:
                    assert answer.status == 200, await answer.text()
                seen, ready = [0], anyio.Event()
                stream = f"{base}/api/sessions/{reply.chat_session_id}/stream"
                tg.start_soon(_browser, http, stream, seen, ready)
                tg.start_soon(_keep_alive, remote, token)
                outbox = LiveOutbox(remote, token)
                tg.start_soon(outbox.run)
                await ready.wait()
                lines = await _stream(outbox, reply, chars, delta, server.pid, seen)
                with anyio.fail_after(60):
                    await outbox.drain(reply.chat_session_id)
                tg.cancel_scope.cancel()
    return lines


async def _stream(
    outbox: LiveOutbox, reply: ChatMessage, chars: int, delta: int, pid: int, seen: list[int]
) -> list[str]:
    count = chars // delta
    tenth = max(1, count // 10)
    lines = [
        f"one reply of {count * delta:,} characters in {count:,} deltas of {delta},"
        f" {ROUND} deltas per round; CPU per delta:",
        f"  {'reply so far':>14} {'server ms':>10} {'machine µs':>11} {'wall s':>7}",
    ]
    rows: list[tuple[float, float]] = []
    piece = ("lorem ipsum dolor sit amet " * (delta // 27 + 1))[:delta]
    sent = 0
    while sent < count:
        server_cpu, machine_cpu, wall = cpu_seconds(pid), 0.0, time.perf_counter()
        stop = min(count, sent + tenth)
        while sent < stop:
            batch = min(ROUND, stop - sent)
            for _ in range(batch):
                event = LiveText(
                    reply.chat_session_id,
                    reply.message_id,
                    PartId("prt_long"),
                    TextKind.TEXT,
                    sent * delta,
                    piece,
                )
                started = time.thread_time()
                await outbox.send(event)
                machine_cpu += time.thread_time() - started
                sent += 1
            with anyio.fail_after(120):
                while seen[0] < sent * delta:  # noqa: ASYNC110 -- the browser task counts
                    await anyio.sleep(0.002)
        deltas = stop - (len(rows) * tenth)
        row = (
            (cpu_seconds(pid) - server_cpu) * 1000 / deltas,
            machine_cpu * 1e6 / deltas,
        )
        rows.append(row)
        lines.append(
            f"  {sent * delta:>14,} {row[0]:>10.3f} {row[1]:>11.1f}"
            f" {time.perf_counter() - wall:>7.1f}"
        )
    first, last = rows[0], rows[-1]
    lines.append(
        f"last tenth / first tenth: server x{last[0] / max(first[0], 1e-9):.2f},"
        f" machine x{last[1] / max(first[1], 1e-9):.2f} (about 1: no cost grows with the reply)"
    )
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--chars", type=int, default=1_000_000, help="characters in the reply")
    parser.add_argument("--delta", type=int, default=50, help="characters per delta")
    args = parser.parse_args()
    if not 0 < args.delta <= args.chars <= 1_000_000:
        parser.error("need 0 < --delta <= --chars <= 1000000 (the longest reply stored)")
    started = time.perf_counter()
    report = anyio.run(measure, args.chars, args.delta)
    print("\n".join(report))
    print(f"Measured in one run of {time.perf_counter() - started:.0f} s.")

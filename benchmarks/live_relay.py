"""The live relay, measured as deployed: server and machine process apart, real opencode.

``orchestrator serve`` runs as a subprocess (pinned to one core), the machine
process as another (``_relay_machine.py``: what ``worker start --server`` runs),
real opencode under it against the stamped fake model in this process. Each
delta is a unique word stamped when the model wrote it; this process reads it
twice -- at the browser's SSE endpoint and, as a second reader, on the very
opencode server the machine uses (``GET /event``) -- so both latencies are on
the same deltas and one clock. Durable writes are the server's batches
(``LiveRelay.writes``), read from its log at the end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import _hops
import aiohttp
import anyio
import attrs

from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.opencode import find_opencode
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.application import accounts
from orchestrator.testing.fake_model import opencode_environment

HERE = Path(__file__).resolve().parent
PASSWORD = "correct horse battery"
_WRITES = re.compile(r"live relay: (\d+) durable writes for (\d+) characters")


@attrs.define
class LivePlan:
    deltas: int
    #: How many sessions stream at once, round by round.
    sessions: tuple[int, ...]
    replies: int
    #: Words each session's model writes per second. 50 sessions of 100 are more than
    #: opencode serves on 2 cores (its own /event falls 0.4-1.2 s behind the model);
    #: ``--rate 20`` is a load it keeps up with here.
    rate: int = 100
    #: Also stamp each word at the machine's and the server's way in and out (``_hops``).
    hops: bool = False


FULL_LIVE = LivePlan(deltas=150, sessions=(1, 50), replies=2)
QUICK_LIVE = LivePlan(deltas=60, sessions=(1, 10), replies=2)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) ``pid`` has used so far, from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of ``pid`` (threads it starts later inherit the main one's mask).

    ``sched_setaffinity(pid)`` alone pins only the main thread: the SQLite thread,
    started before, would still run on the other core.
    """
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), cpus)


async def _wait_file_line(path: Path, pattern: str, seconds: float) -> None:
    log = anyio.Path(path)
    with anyio.fail_after(seconds):
        while not (await log.exists() and re.search(pattern, await log.read_text())):  # noqa: ASYNC110 -- another process writes it
            await anyio.sleep(0.1)


@asynccontextmanager
async def _process(
    *args: str, env: dict[str, str], output: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    sink: Any = subprocess.PIPE if output is None else output.open("w")
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=sink, stderr=subprocess.STDOUT
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                with anyio.fail_after(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@attrs.define
class Readers:
    """Both readers of one round: words seen at the browser's SSE and at opencode's /event."""

    sse: Any
    agent: Any


async def _opencode_reader(address: dict[str, str], probe: Any) -> None:
    token = base64.b64encode(f"opencode:{address['password']}".encode()).decode()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(
            address["url"] + "/event", headers={"Authorization": f"Basic {token}"}
        ) as response,
    ):
        if response.status != 200:
            raise RuntimeError(f"opencode's /event answered HTTP {response.status}")
        async for raw in response.content:
            line = raw.decode()
            if not line.startswith("data: "):
                continue
            now = time.perf_counter()
            event = json.loads(line[6:])
            props = event.get("properties") or {}
            if event.get("type") == "message.part.delta" and props.get("field") == "text":
                probe.feed(("oc", props.get("partID")), str(props.get("delta", "")), now)


async def _sse_reader(
    http: aiohttp.ClientSession, base: str, session_id: str, probe: Any, done: dict[str, int]
) -> None:
    url = f"{base}/api/sessions/{session_id}/stream"
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with http.get(url, timeout=timeout) as response:
        name = ""
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                now = time.perf_counter()
                data = json.loads(line[6:])
                if name == "chunk":
                    probe.feed(("sse", data.get("part_id")), data["chunk"], now)
                elif name == "messages":
                    finished = [
                        m
                        for m in data["messages"]
                        if m["role"] == "assistant" and m["status"] != "streaming"
                    ]
                    done[session_id] = len(finished)


async def measure_live(plan: LivePlan, relay: Any) -> list[str]:
    """Run every session count of ``plan``; the report lines."""
    lines: list[str] = []
    binary = find_opencode(dict(os.environ))
    with tempfile.TemporaryDirectory(prefix="live-relay-") as raw:
        tmp = Path(raw)
        data, root = tmp / "data", tmp / "projects"
        data.mkdir()
        root.mkdir()
        stamps = relay.Stamps()
        async with relay.StampedModel(stamps, plan.deltas, 1 / plan.rate) as model:
            backend = await open_backend(
                data / "orchestrator.sqlite3",
                clock=SystemClock(),
                ids=RandomIds(),
                hasher=Argon2Hasher(fast=True),
            )
            user = await accounts.create_user(backend, Argon2Hasher(fast=True), "alice", PASSWORD)
            machine, token = await backend.create_machine(user.user_id, "bench")
            await backend.close()
            port = _free_port()
            base = f"http://127.0.0.1:{port}"
            server_env = {**os.environ, "ORCHESTRATOR_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
            hops_folder = tmp / "hops"
            if plan.hops:
                hops_folder.mkdir()
                server_env[_hops.HOPS_VARIABLE] = str(hops_folder)
            # ``orchestrator serve`` itself, with INFO logs on (the relay reports its writes),
            # and no per-address connection cap: here 50 browsers and the machine share
            # 127.0.0.1, which the cap of 64 (meant for one client) would refuse.
            orchestrator = [
                sys.executable,
                "-c",
                "import logging; logging.basicConfig(level=logging.INFO);"
                " logging.getLogger('aiohttp.access').setLevel(logging.WARNING);"
                " import attrs; from orchestrator.entrypoints import cli;"
                " made = cli.server_settings;"
                " cli.server_settings = lambda *a, **k: attrs.evolve("
                "made(*a, **k), max_connections_per_address=0);"
                f" import sys; sys.path.insert(0, {str(HERE)!r}); import _hops;"
                " _hops.install('server');"
                " cli.main()",
            ]
            serve = [*orchestrator, "serve", "--port", str(port), "--host", "127.0.0.1"]
            server_log = tmp / "server.log"
            async with _process(*serve, env=server_env, output=server_log) as server:
                await _wait_file_line(server_log, "running at", 60)
                _pin(server.pid, {0})  # the server under one core: every thread of it

                sandbox = opencode_environment(tmp / "opencode", model.base_url)
                machine_env = {**os.environ, **sandbox, "PYTHONUNBUFFERED": "1"}
                if plan.hops:
                    machine_env[_hops.HOPS_VARIABLE] = str(hops_folder)
                machine_env["PATH"] = f"{binary.parent}:{machine_env.get('PATH', '')}"
                address_file = tmp / "opencode-address.json"
                helper = [sys.executable, str(HERE / "_relay_machine.py")]
                args = [*helper, base, str(token), str(root), str(address_file)]
                async with (
                    _process(*args, env=machine_env) as machine_proc,
                    aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
                    anyio.create_task_group() as tg,
                ):

                    async def drain_machine() -> None:
                        assert machine_proc.stdout is not None
                        async for _ in machine_proc.stdout:
                            pass

                    tg.start_soon(drain_machine)
                    # This process too: it runs the fake model and all 51 readers, so a
                    # saturated benchmark would delay both readers' clocks, not the relay.
                    pids = {
                        "server": server.pid,
                        "machine": machine_proc.pid,
                        "benchmark": os.getpid(),
                    }
                    lines += await _rounds(
                        plan,
                        relay,
                        stamps,
                        http,
                        base,
                        machine,
                        address_file,
                        tg,
                        pids,
                        hops_folder if plan.hops else None,
                    )
                    tg.cancel_scope.cancel()
            writes = list(_WRITES.finditer(server_log.read_text()))
            if writes:
                count, chars = int(writes[-1].group(1)), int(writes[-1].group(2))
                per_1k = count * 1000 / chars if chars else float("nan")
                lines.append(
                    f"durable writes: {count} batches for {chars} characters"
                    f" = {per_1k:.2f} per 1,000 (target <= 2)"
                )
            else:
                lines.append("durable writes: the server did not report them")
    return lines


async def _rounds(
    plan: LivePlan,
    relay: Any,
    stamps: Any,
    http: aiohttp.ClientSession,
    base: str,
    machine: Any,
    address_file: Path,
    tg: Any,
    pids: dict[str, int],
    hops_folder: Path | None = None,
) -> list[str]:
    async def call(method: str, path: str, body: object = None) -> Any:
        async with http.request(method, base + path, json=body, headers=headers) as answer:
            assert answer.status < 300, await answer.text()
            return await answer.json()

    headers: dict[str, str] = {}
    await call("POST", "/api/login", {"username": "alice", "password": PASSWORD})
    headers["X-CSRF-Token"] = (await call("GET", "/api/session"))["csrf_token"]
    created = await call("POST", f"/api/machines/{machine.machine_id}/workers", {"directory": ""})
    worker_id = created.get("worker", created)["worker_id"]
    with anyio.fail_after(120):
        while True:
            listed = await call("GET", f"/api/machines/{machine.machine_id}/workers")
            [worker] = [w for w in listed["workers"] if w["worker_id"] == worker_id]
            if worker["status"] == "online" and worker["models"]:
                model_name = worker["models"][0]
                break
            await anyio.sleep(0.2)
    lines = [
        f"  {'sessions':>8} {'words/s':>7} {'words':>6} {'opencode p50':>12} {'p99':>7}"
        f" {'browser p50':>11} {'p99':>7} {'+p50 ms':>8} {'+p99 ms':>8} {'ratio p50':>9}"
        f" {'server CPU':>10} {'machine CPU':>11} {'bench CPU':>9}"
    ]
    sessions: list[str] = []
    sse, agent = relay.Probe(), relay.Probe()
    done: dict[str, int] = {}
    reading: list[bool] = []
    for count in plan.sessions:
        while len(sessions) < count:
            answer = await call("POST", f"/api/workers/{worker_id}/sessions", {"model": model_name})
            session_id = answer.get("session", answer)["chat_session_id"]
            sessions.append(session_id)
            done[session_id] = 0
            tg.start_soon(_sse_reader, http, base, session_id, sse, done)
        active = sessions[:count]
        mark = None
        cpu: dict[str, float] = {}
        for index in range(plan.replies + 1):  # the first round warms up
            if index == 1:
                mark = stamps.mark()
                cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
                started = time.perf_counter()
            wanted = {s: done[s] + 1 for s in active}
            for session_id in active:
                await call(
                    "POST", f"/api/sessions/{session_id}/messages", {"content": f"go {index}"}
                )
            with anyio.fail_after(300):
                while any(done[s] < wanted[s] for s in active):  # noqa: ASYNC110 -- readers count
                    await anyio.sleep(0.05)
            if not reading:  # after the warm-up: the server the sessions run on is up
                await anyio.sleep(0.5)
                for address in json.loads(await anyio.Path(address_file).read_text()):
                    tg.start_soon(_opencode_reader, address, agent)
                reading.append(True)
                await anyio.sleep(0.5)
        await anyio.sleep(0.3)
        words = stamps.since(mark)
        wall = time.perf_counter() - started
        used = {name: cpu_seconds(pid) - cpu[name] for name, pid in pids.items()}
        # ms of CPU per delta (word) of the measured replies, all threads of each process.
        per_word = {name: seconds * 1000 / max(1, len(words)) for name, seconds in used.items()}
        at_agent = relay.latencies(stamps, agent, words)
        at_browser = relay.latencies(stamps, sse, words)
        both = [w for w in words if w in agent.times and w in sse.times]
        extra = [sse.times[w] - agent.times[w] for w in both]
        pct = relay.pct
        ratio = pct(at_browser, 0.5) / pct(at_agent, 0.5) if at_agent else float("nan")
        lines.append(
            f"  {count:>8} {plan.rate:>7} {len(both):>6}"
            f" {pct(at_agent, 0.5):>12.1f} {pct(at_agent, 0.99):>7.1f}"
            f" {pct(at_browser, 0.5):>11.1f} {pct(at_browser, 0.99):>7.1f}"
            f" {pct(extra, 0.5):>8.1f} {pct(extra, 0.99):>8.1f} {ratio:>9.2f}"
            f" {per_word['server']:>7.3f} ms {per_word['machine']:>8.3f} ms"
            f" {per_word['benchmark']:>6.3f} ms"
        )
        busy = ", ".join(f"{name} {seconds * 100 / wall:.0f}%" for name, seconds in used.items())
        lines.append(f"  ({wall:.1f} s measured; CPU of one core used: {busy})")
        if len(both) < len(words):
            lines.append(f"  ({len(words) - len(both)} of {len(words)} words not seen by both)")
        if hops_folder is not None:
            await anyio.sleep(_hops.FLUSH_SECONDS * 2)  # every stage has written its words
            lines.append(_hops.report(_hops.read(hops_folder), agent.times, sse.times, words, pct))
    return lines

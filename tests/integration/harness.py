"""Real processes for integration tests: the server and the ``orchestrator`` CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pexpect
import pytest

from orchestrator.adapters._reaper import descendants
from orchestrator.adapters.convex import ConvexBackend, open_convex_backend
from orchestrator.adapters.convex.backend import TransportName
from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.opencode import (
    OpencodeRuntime,
    ProcessPolicy,
    find_opencode,
    open_opencode_runtime,
)
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.domain.errors import AgentUnavailable
from orchestrator.domain.ids import UserId
from orchestrator.domain.model import Machine
from orchestrator.testing.fake_model import FakeModelServer, opencode_environment

CLI = [sys.executable, "-m", "orchestrator"]

#: Module marks: skip where opencode (or git) is not installed (fixtures in conftest.py).
NEEDS_OPENCODE = pytest.mark.usefixtures("opencode_binary")
NEEDS_GIT = pytest.mark.usefixtures("git_binary")

#: The password every test account is created with.
PASSWORD = "correct horse battery"


def opencode_or_skip() -> Path:
    """The opencode binary, or skip the test where it is not installed."""
    try:
        return find_opencode()
    except AgentUnavailable as exc:
        pytest.skip(f"opencode is not installed ({exc.message})")


@asynccontextmanager
async def opencode_runtime(
    sandbox: Path,
    model: FakeModelServer,
    *,
    policy: ProcessPolicy = ProcessPolicy.SHARED,
    permission: dict[str, str] | None = None,
    project_config: bool = False,
) -> AsyncIterator[OpencodeRuntime]:
    """Real opencode against ``model``, its home sandboxed in ``sandbox``; skips if not installed.

    ``permission`` is the user config's; ``project_config`` lets opencode read the
    worker folder's own config and commands, which the sandbox otherwise hides.
    """
    binary = opencode_or_skip()
    env = opencode_environment(sandbox, model.base_url, permission=permission)
    if project_config:
        del env["OPENCODE_DISABLE_PROJECT_CONFIG"]
    async with open_opencode_runtime(binary=binary, env=env, policy=policy) as runtime:
        yield runtime


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def unreachable_convex(
    transport: TransportName, timeout: float
) -> AsyncIterator[tuple[ConvexBackend, int]]:
    """A Convex backend pointed at a loopback port nobody listens on, and that port."""
    port = free_port()
    backend = open_convex_backend(f"http://127.0.0.1:{port}", transport=transport, timeout=timeout)
    try:
        yield backend, port
    finally:
        await backend.close()


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MACHINE_TOKEN", "ROOT_DIRECTORY")}
    env.update(ORCHESTRATOR_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1", **extra)
    return env


def run_cli(
    args: Sequence[str], data_dir: Path, *, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``orchestrator ARGS`` to completion without a terminal."""
    return subprocess.run(
        [*CLI, *args],
        input=input,
        capture_output=True,
        text=True,
        env=cli_env(data_dir),
        cwd=cwd,
        timeout=60,
        check=False,
    )


@attrs.define
class Server:
    url: str
    port: int
    data_dir: Path
    process: subprocess.Popen[str]
    lines: list[str]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest = self.process.communicate()[0]
            printed = "".join(self.lines) + rest
            raise AssertionError(f"serve did not stop within 15 s of SIGTERM: {printed}") from None


def wait_for_line(
    process: subprocess.Popen[str], pattern: str, lines: list[str], timeout: float = 30
) -> str:
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise AssertionError(f"process exited {process.returncode}: {''.join(lines)}")
            continue
        lines.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line matching {pattern!r} in {''.join(lines)}")


@contextmanager
def running_server(data_dir: Path, port: int | None = None) -> Iterator[Server]:
    """``orchestrator serve`` on a free loopback port, stopped afterwards."""
    port = port or free_port()
    process = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(data_dir),
    )
    lines: list[str] = []
    server = Server(f"http://127.0.0.1:{port}", port, data_dir, process, lines)
    try:
        wait_for_line(process, r"running at", lines)
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def server_database(
    data_dir: Path, *, fast: bool = False, poll_interval: float = 0.5
) -> AsyncIterator[SQLiteBackend]:
    """The server's SQLite database in ``data_dir``, opened directly; closed afterwards.

    ``fast`` hashes new secrets with test-speed Argon2 parameters.
    """
    backend = await open_backend(
        data_dir / "orchestrator.sqlite3",
        clock=SystemClock(),
        ids=RandomIds(),
        hasher=Argon2Hasher(fast=fast),
        poll_interval=poll_interval,
    )
    try:
        yield backend
    finally:
        await backend.close()


async def only_machine(backend: SQLiteBackend, username: str = "alice") -> tuple[UserId, Machine]:
    """The user's ID and the one machine they have."""
    found = await backend.find_user(username)
    assert found is not None
    [summary] = await backend.list_machines(found[0].user_id)
    return found[0].user_id, summary.machine


async def log_in(http: aiohttp.ClientSession, base: str, username: str = "alice") -> str:
    """Sign ``username`` in on ``http`` (its cookie jar keeps the session); the CSRF token."""
    login = {"username": username, "password": PASSWORD}
    async with http.post(f"{base}/api/login", json=login) as answer:
        assert answer.status == 200, await answer.text()
        return str((await answer.json())["csrf_token"])


async def set_up_first_account(http: aiohttp.ClientSession, link: str) -> None:
    """Make alice's account through the setup link ``serve`` printed (the first-run page)."""
    async with http.get(link) as page:
        assert page.status == 200
        html = await page.text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert csrf, html
    form = {
        "csrf_token": csrf.group(1),
        "token": link.split("token=")[1],
        "username": "alice",
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    base = link.split("/setup?")[0]
    async with http.post(f"{base}/setup", data=form, allow_redirects=False) as created:
        assert created.status == 303


def create_user_and_machine(data_dir: Path, username: str = "alice", name: str = "laptop") -> str:
    """Create an account and a machine with the CLI; return the machine token it printed."""
    created = run_cli(
        ["user", "create", username, "--password-stdin"], data_dir, input=f"{PASSWORD}\n"
    )
    assert created.returncode == 0, created.stderr
    machine = run_cli(["machine", "create", name, "--user", username], data_dir)
    assert machine.returncode == 0, machine.stderr
    match = re.search(r"^  (mch_\S+)$", machine.stdout, re.MULTILINE)
    assert match, machine.stdout
    return match.group(1)


@contextmanager
def own_loop_thread(
    start: Callable[[], Awaitable[object]],
    stop: Callable[[], Coroutine[Any, Any, object]],
    what: str,
) -> Iterator[None]:
    """Run a loopback server on its own event loop in a thread, so blocking waits don't stall it."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), f"{what} did not start"
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


@contextmanager
def fake_model_thread(**options: object) -> Iterator[FakeModelServer]:
    """The fake model server on its own event loop in a thread, so blocking waits don't stall it."""
    server = FakeModelServer(**options)  # type: ignore[arg-type]
    with own_loop_thread(server.start, server.close, "the fake model server"):
        yield server


@attrs.frozen
class SseEvent:
    """One server-sent event: its name, the id its block gave (if any), its decoded data."""

    name: str
    id: str | None
    data: Any


async def sse_events(content: aiohttp.StreamReader) -> AsyncIterator[SseEvent]:
    """The events of an SSE body as they arrive, one per ``data:`` line."""
    name, event_id = "", None
    async for raw in content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            yield SseEvent(name, event_id, json.loads(line[6:]))
            event_id = None


def cli_process(
    args: Sequence[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.Popen[str]:
    """``orchestrator ARGS`` without a terminal, output merged for wait_for_line."""
    return text_process([*CLI, *args], env, cwd)


def text_process(
    argv: Sequence[str], env: dict[str, str], cwd: Path | None = None, *, own_group: bool = False
) -> subprocess.Popen[str]:
    """``argv`` without a terminal (in a process group of its own if asked), output merged."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=own_group,
    )


def spawn_cli(args: Sequence[str], data_dir: Path, cwd: Path, **extra_env: str) -> pexpect.spawn:
    """``orchestrator ARGS`` on a pseudo-terminal, as a person runs it, for its prompts."""
    return pexpect.spawn(
        CLI[0],
        [*CLI[1:], *args],
        cwd=str(cwd),
        env=cli_env(data_dir, **extra_env),
        encoding="utf-8",
        timeout=30,
    )


def signal_to_end(child: pexpect.spawn, signum: int) -> int | None:
    """Send ``signum`` to a spawned CLI and read its output to the end; its exit status."""
    child.kill(signum)
    child.expect(pexpect.EOF)
    child.wait()
    status: int | None = child.exitstatus
    return status


def start_worker(
    server_url: str, token: str, root: Path, env: dict[str, str], cwd: Path, *extra: str
) -> subprocess.Popen[str]:
    """``orchestrator worker start`` without a terminal, output merged for wait_for_line."""
    args = ["worker", "start", "--server", server_url, "--token", token, "--root", str(root)]
    return cli_process([*args, "--heartbeat", "1", *extra], env, cwd)


def stop(process: subprocess.Popen[Any], timeout: float = 30) -> int:
    """SIGTERM ``process``, SIGKILL it if it does not end within ``timeout``; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait(timeout=10)


def live_pids(keep: Callable[[Path], bool]) -> list[int]:
    """PIDs of live (not zombie) processes whose ``/proc`` entry ``keep`` accepts."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(") ", 1)[1][0]
            if state != "Z" and keep(entry):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def processes_with_env(marker: str) -> list[int]:
    """PIDs of live processes whose environment mentions ``marker`` (e.g. a sandbox HOME)."""
    return live_pids(lambda entry: marker.encode() in (entry / "environ").read_bytes())


def describe(pids: list[int]) -> str:
    """``pids`` as ``pid (parent, state): command line``, one per line, to say what was left."""
    lines = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        lines.append(f"{pid} (parent {stat[1]}, {stat[0]}): {command.strip()[:200]}")
    return "\n".join(lines) or "(all gone meanwhile)"


def opencode_processes(parent: int) -> list[int]:
    """PIDs below ``parent`` (a machine process) running the opencode binary itself.

    The reaper that starts opencode is a Python process in between: it is not one.
    """
    binary = find_opencode().resolve()
    found = []
    for pid in descendants(parent):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/exe").resolve() == binary:
                found.append(pid)
    return found


@attrs.define
class Output:
    """A child process whose merged stdout a thread keeps reading, so its pipe never fills.

    Unlike :func:`wait_for_line`, whose ``readline`` blocks while a process says
    nothing (a standby machine process waits in silence), its waits time out.
    """

    process: subprocess.Popen[str]
    lines: list[str] = attrs.field(factory=list)
    _changed: threading.Condition = attrs.field(factory=threading.Condition)

    def __attrs_post_init__(self) -> None:
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def text(self) -> str:
        """Everything it printed so far."""
        with self._changed:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first line matching ``pattern``, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if found := re.search(pattern, line):
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._pending()):
                    raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.lines)}")
                self._changed.wait(min(left, 0.5))

    def _pending(self) -> bool:
        return self.process.stdout is not None and not self.process.stdout.closed

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL if it does not end in time."""
        return stop(self.process, timeout)

"""One ``opencode serve`` process: find the binary, start it, talk HTTP to it, stop it."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import signal
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from orchestrator.adapters.system import launch_command
from orchestrator.domain.errors import AgentUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)

#: The version the orchestrator is tested against (``tools/opencode/package.json``).
OPENCODE_VERSION = "1.18.33"
SERVER_USERNAME = "opencode"

_LISTENING = re.compile(rb"opencode server listening on http://127\.0\.0\.1:(\d+)")
_REPO_BINARY = Path("tools") / "opencode" / "node_modules" / ".bin" / "opencode"

Event = Mapping[str, Any]


def find_opencode(env: Mapping[str, str] | None = None) -> Path:
    """The opencode binary: ``$OPENCODE_BIN``, else ``opencode`` on PATH, else this repo's pin."""
    env = os.environ if env is None else env
    configured = env.get("OPENCODE_BIN")
    if configured:
        path = Path(configured).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return path
        raise AgentUnavailable(
            f"OPENCODE_BIN is {configured!r}, which is not an executable file. "
            f"Run: npm install -g opencode-ai@{OPENCODE_VERSION} (or fix OPENCODE_BIN)."
        )
    on_path = shutil.which("opencode", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    for parent in Path(__file__).resolve().parents:
        candidate = parent / _REPO_BINARY
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise AgentUnavailable()


def _basic_auth(password: str) -> str:
    token = base64.b64encode(f"{SERVER_USERNAME}:{password}".encode()).decode()
    return f"Basic {token}"


class SseParser:
    """Incremental parser of a ``text/event-stream`` whose events carry JSON ``data``."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[Any]:
        """Consume bytes; return the JSON payloads of every event they complete."""
        # Split once per chunk: cutting one line at a time copied the rest of a large
        # chunk for every line (quadratic when opencode sends a burst of events).
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        events: list[Any] = []
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if self._data:
                    payload = b"\n".join(self._data)
                    self._data = []
                    with contextlib.suppress(ValueError):
                        events.append(json.loads(payload))
            elif line.startswith(b"data:"):
                self._data.append(line[5:].removeprefix(b" "))
        return events


class OpencodeServer:
    """A running ``opencode serve`` bound to 127.0.0.1 in one directory.

    :meth:`run` (started in a task group with ``await tg.start(server.run)``)
    spawns the process, reads its port, connects to ``GET /event`` and reports
    ready; every event is passed to ``on_event``. When the process dies or
    :meth:`stop` is called, the process group gets SIGTERM, then SIGKILL after
    ``stop_timeout`` seconds, and is always reaped; ``on_exit`` is called last.
    """

    def __init__(
        self,
        binary: Path,
        directory: Path,
        env: Mapping[str, str],
        *,
        worker_config: str | None = None,
        on_event: Callable[[OpencodeServer, Event], None],
        on_exit: Callable[[OpencodeServer], None],
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        request_timeout: float = 30.0,
    ) -> None:
        self.binary = binary
        self.directory = directory
        self._env = dict(env)
        #: JSON opencode reads as its inline config (OPENCODE_CONFIG_CONTENT): the worker's own.
        self.worker_config = worker_config
        self._password = secrets.token_urlsafe(32)
        self._on_event = on_event
        self._on_exit = on_exit
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._request_timeout = request_timeout
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._process: anyio.abc.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._output: deque[str] = deque(maxlen=40)
        self._ready = False
        self._stopping = False
        self.port: int | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        return self._ready and not self._done.is_set() and not self._stopping

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Start the server, report ready once events flow, then watch it until it stops."""
        try:
            with self._scope:
                process = await self._spawn()
                assert process.stdout is not None
                output = BufferedByteReceiveStream(process.stdout)
                self.port = await self._read_port(output)
                self._http = aiohttp.ClientSession(
                    headers={"Authorization": _basic_auth(self._password)},
                    timeout=aiohttp.ClientTimeout(total=self._request_timeout),
                )
                try:
                    async with anyio.create_task_group() as watchers:
                        watchers.start_soon(self._drain, output)
                        await watchers.start(self._listen, watchers.cancel_scope)
                        self._ready = True
                        task_status.started()
                except BaseExceptionGroup as group:
                    raise _first_error(group) from None
        except Exception:
            if not self._ready:
                raise
            # Once running, a failure must not take the caller's task group down.
            log.exception("opencode[%s] watcher failed", self.pid)
        finally:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
            if self._ready:
                self._on_exit(self)

    async def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait until it is reaped."""
        self._stopping = True
        self._scope.cancel()
        if self._process is not None or self._ready:
            await self._done.wait()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        whole_turn: bool = False,
    ) -> Any:
        """Call the server's HTTP API and return the decoded JSON body (None if empty).

        ``whole_turn``: the route answers when an agent turn ends, so only connecting
        is timed (the turn ends by itself, by abort, or when the server stops).
        """
        if self._http is None or not self.alive:
            raise AgentUnavailable("opencode stopped. Open the session again to restart it.")
        # Without a timeout argument aiohttp applies the session's (None would mean none).
        options: dict[str, Any] = {"json": body}
        if whole_turn:
            options["timeout"] = aiohttp.ClientTimeout(
                total=None, sock_connect=self._request_timeout
            )
        try:
            async with self._http.request(method, self.base_url + path, **options) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AgentUnavailable(f"opencode did not answer {method} {path}: {exc!r}") from exc
        payload = _decode(raw)
        if status == 404:
            raise NotFound(_error_message(payload) or f"opencode has no {path}.")
        if status == 400:
            raise InvalidInput(_error_message(payload) or "opencode refused the request.")
        if status >= 300:
            detail = _error_message(payload) or raw[:200].decode(errors="replace")
            raise AgentUnavailable(f"opencode answered {status} to {method} {path}: {detail}")
        return payload

    async def _spawn(self) -> anyio.abc.Process:
        env = dict(self._env)
        env["OPENCODE_SERVER_USERNAME"] = SERVER_USERNAME
        env["OPENCODE_SERVER_PASSWORD"] = self._password
        if self.worker_config is not None:
            env["OPENCODE_CONFIG_CONTENT"] = self.worker_config
        command = [str(self.binary), "serve", "--port", "0", "--hostname", "127.0.0.1"]
        try:
            self._process = await anyio.open_process(
                launch_command(command),
                cwd=self.directory,
                env=env,
                stdin=None,
                stdout=-1,
                stderr=-2,  # subprocess.STDOUT: one stream to drain
                start_new_session=True,  # its own process group, so stop reaches tools too
            )
        except OSError as exc:
            raise AgentUnavailable(f"opencode could not be started: {exc}") from exc
        return self._process

    async def _read_port(self, output: BufferedByteReceiveStream) -> int:
        with anyio.move_on_after(self._startup_timeout):
            while True:
                try:
                    line = await output.receive_until(b"\n", 65536)
                except (anyio.EndOfStream, anyio.IncompleteRead) as exc:
                    raise AgentUnavailable(
                        f"opencode exited before it was ready.{self._output_tail()}"
                    ) from exc
                match = _LISTENING.search(line)
                if match:
                    return int(match.group(1))
                self._output.append(line.decode(errors="replace"))
        raise AgentUnavailable(
            f"opencode did not start within {self._startup_timeout:g} seconds.{self._output_tail()}"
        )

    async def _drain(self, output: BufferedByteReceiveStream) -> None:
        # The pipe must be read, or opencode blocks once it is full.
        finished = (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError)
        with contextlib.suppress(*finished):
            while True:
                line = await output.receive_until(b"\n", 1 << 20)
                text = line.decode(errors="replace")
                self._output.append(text)
                log.debug("opencode[%s]: %s", self.pid, text)

    async def _listen(
        self, watchers: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        assert self._http is not None
        started = False
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._request_timeout)
        with anyio.move_on_after(self._startup_timeout) as startup:
            try:
                async with self._http.get(self.base_url + "/event", timeout=timeout) as response:
                    if response.status != 200:
                        raise AgentUnavailable(
                            f"opencode refused its event stream ({response.status})."
                        )
                    parser = SseParser()
                    async for chunk in response.content.iter_any():
                        for event in parser.feed(chunk):
                            if not isinstance(event, dict):
                                continue
                            if not started and event.get("type") == "server.connected":
                                started = True
                                startup.deadline = math.inf
                                task_status.started()
                            self._dispatch(event)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not started:
                    raise AgentUnavailable(f"opencode event stream failed: {exc!r}") from exc
                log.warning("opencode[%s] event stream ended: %r", self.pid, exc)
        if not started:
            if startup.cancelled_caught:
                raise AgentUnavailable(
                    f"opencode did not start within {self._startup_timeout:g} seconds."
                    f"{self._output_tail()}"
                )
            raise AgentUnavailable(f"opencode closed its event stream.{self._output_tail()}")
        # The stream is gone, so the server is dying: stop watching its output too.
        watchers.cancel()

    def _dispatch(self, event: Event) -> None:
        try:
            self._on_event(self, event)
        except Exception:
            log.exception("opencode[%s] event handler failed on %s", self.pid, event.get("type"))

    async def _shutdown(self) -> None:
        if self._http is not None:
            await self._http.close()
        process = self._process
        if process is not None:
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGTERM)
                with anyio.move_on_after(self._stop_timeout):
                    await process.wait()
            if process.returncode is None:
                log.warning("opencode[%s] ignored SIGTERM; killing it", process.pid)
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
            else:
                # The leader is gone; make sure nothing it started outlives it.
                _signal_group(process.pid, signal.SIGKILL)
            await process.aclose()
        self._done.set()

    def _output_tail(self) -> str:
        tail = "".join(self._output).strip()
        return f" Its output ended with: {tail[-500:]}" if tail else ""


def _signal_group(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        return exc
    return group


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _error_message(payload: Any) -> str | None:
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])
        if isinstance(payload.get("message"), str):
            return str(payload["message"])
    return None

"""Real parts for browser tests: a restartable ``orchestrator serve``, machine processes, pages."""

from __future__ import annotations

import os
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import attrs
from playwright.sync_api import Locator, Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.integration.harness import PASSWORD as PASSWORD  # re-exported for the browser tests
from tests.integration.harness import Output as Output  # re-exported for the browser tests
from tests.integration.harness import cli_env, cli_process, free_port
from tests.integration.harness import run_cli as run_orchestrator

#: Where screenshots go: ``artifacts/screenshots``, or ``$ORCHESTRATOR_SCREENSHOTS``
#: (``nox -s screenshots`` writes the README's pictures to docs/screenshots).
SCREENSHOTS = Path(
    os.environ.get("ORCHESTRATOR_SCREENSHOTS")
    or Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
)
#: (name, width, height) of the viewports every screenshot is taken at.
VIEWPORTS = (("desktop", 1280, 800), ("phone", 360, 740))


def spawn(args: list[str], env: dict[str, str], cwd: Path | None = None) -> Output:
    """``orchestrator ARGS`` without a terminal, its output read as it comes."""
    return Output(cli_process(args, env, cwd))


@attrs.define
class Server:
    """``orchestrator serve`` on a loopback port; restartable on the same port and data."""

    data_dir: Path
    port: int = attrs.field(factory=free_port)
    output: Output | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = ["serve", "--port", str(self.port), "--host", "127.0.0.1"]
        self.output = spawn(args, cli_env(self.data_dir))
        self.output.wait_for(r"running at")

    def setup_link(self) -> str:
        assert self.output is not None
        return self.output.wait_for(r"First run: open (\S+)").group(1)

    def stop(self) -> None:
        if self.output is not None:
            self.output.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_machine(
    command: str, token: str, root: Path, env: dict[str, str], cwd: Path, server_url: str
) -> Output:
    """Run the ``orchestrator worker start …`` command the UI showed, token in MACHINE_TOKEN."""
    words = shlex.split(command)
    assert words == ["orchestrator", "worker", "start", "--server", server_url], command
    args = [*words[1:], "--root", str(root), "--heartbeat", "1"]
    return spawn(args, {**env, "MACHINE_TOKEN": token}, cwd)


def run_cli(args: list[str], data_dir: Path, stdin: str | None = None) -> str:
    done = run_orchestrator(args, data_dir, input=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def create_user(data_dir: Path, username: str) -> None:
    run_cli(["user", "create", username, "--password-stdin"], data_dir, PASSWORD + "\n")


def sign_in(page: Page, base_url: str, username: str) -> None:
    """Sign in through the form."""
    page.goto(f"{base_url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def call_api(page: Page, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """A JSON API call from the page's browser context (its cookies and CSRF token)."""
    origin = _origin(page)
    session = page.request.get(origin + "/api/session")
    csrf = session.json()["csrf_token"] if session.ok else ""
    response = page.request.fetch(
        origin + path,
        method=method,
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
        data=None if body is None else body,
    )
    text = response.text()
    try:
        data = response.json() if text else None
    except ValueError:
        data = text
    return response.status, data


def _origin(page: Page) -> str:
    scheme, _, host = page.url.split("/")[:3]
    return f"{scheme}//{host}"


def screenshots(
    page: Page,
    name: str,
    viewports: tuple[str, ...] = ("desktop", "phone"),
    prepare: Callable[[], None] | None = None,
) -> None:
    """``name`` in light and dark, at desktop and phone width, under :data:`SCREENSHOTS`.

    ``prepare`` runs before each picture, once its size and colours are set (to scroll …).
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for label, width, height in VIEWPORTS:
            if label not in viewports:
                continue
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(50)
            if prepare is not None:
                prepare()
            page.screenshot(path=SCREENSHOTS / f"{name}-{scheme}-{label}.png")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": VIEWPORTS[0][1], "height": VIEWPORTS[0][2]})


@attrs.define
class Chat:
    """A signed-in page on the chat of one online worker, with the machine process behind it."""

    server: Server
    machine: Output
    machine_id: str
    worker_id: str
    model: str
    #: The machine token the machine process runs with.
    token: str = ""


def wait_for_online_worker(page: Page, machine_id: str, directory: str) -> tuple[str, str]:
    """Add a worker on ``directory`` through the API; wait until it is online with models."""
    status, created = call_api(
        page, "POST", f"/api/machines/{machine_id}/workers", {"directory": directory}
    )
    assert status == 201, created
    worker_id = created["worker"]["worker_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, listed = call_api(page, "GET", f"/api/machines/{machine_id}/workers")
        [worker] = [w for w in listed["workers"] if w["worker_id"] == worker_id]
        if worker["status"] == "online" and worker["models"]:
            return worker_id, worker["models"][0]
        time.sleep(0.2)
    raise AssertionError(f"the worker did not come online: {worker}")


def open_new_session(page: Page, chat: Chat) -> None:
    """Open the chat page on the worker and start a session from the UI."""
    page.goto(f"{chat.server.url}/chat?machine={chat.machine_id}&worker={chat.worker_id}")
    page.get_by_role("button", name="New session").click()
    page.get_by_text("No messages yet").wait_for()


def send(page: Page, text: str) -> Locator:
    """Type ``text`` into the message box and send it with Enter; the newest reply's element."""
    box = page.get_by_label("Message", exact=True)
    box.fill(text)
    box.press("Enter")
    return page.locator(".msg.assistant").last


def ask_to_run(page: Page, model: FakeModelServer, command: str, after: str) -> Locator:
    """Send a message the model answers by asking to run ``command``; its permission prompt."""
    model.reply, model.delta_delay = "Done.", 0.0
    model.bash_command, model.after_tool_reply = command, after
    send(page, "Run a command")
    prompt = page.get_by_role("group", name="Permission request")
    expect(prompt).to_contain_text("bash", timeout=30_000)
    return prompt


class Proxy:
    """A loopback TCP proxy to ``port`` whose connections a test can cut, like a network drop."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.down = False
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.down:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open.difference_update((source, sink))
        _hang_up(source, sink)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self.down = True
        with self._lock:
            ends, self._open = list(self._open), set()
        _hang_up(*ends)

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _hang_up(*ends: socket.socket) -> None:
    # shutdown() before close(): a thread blocked in recv() on a socket keeps a bare
    # close() from sending FIN, and the browser would never see the connection drop.
    for end in ends:
        with suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)
        end.close()

"""Start and stop the loopback Convex harness (``backend_convex/test-harness/server.mjs``).

The harness runs the real TypeScript functions with convex-test behind
Convex's HTTP API on 127.0.0.1, so the real Python adapter reaches them. One
process serves many callers (tests, benchmarks); each gets a fresh, empty deployment from it.
It needs a checkout of the repository (``backend_convex`` beside ``src``) and Node.js.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import IO

from orchestrator.testing.processes import stop_process

BACKEND_CONVEX = Path(__file__).resolve().parents[3] / "backend_convex"
SERVER = BACKEND_CONVEX / "test-harness" / "server.mjs"
READY = "convex harness listening on "
START_TIMEOUT = 60.0


def unavailable_reason() -> str | None:
    """Why the harness cannot run here, or None if it can."""
    if shutil.which("node") is None:
        return "node is not installed: the Convex harness needs Node.js 20.19 or newer"
    if not (BACKEND_CONVEX / "node_modules" / "convex-test").is_dir():
        return "backend_convex/node_modules is missing: run `npm ci` in backend_convex"
    return None


def _read_line(stream: IO[str], deadline: float) -> str:
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if ready:
            return stream.readline()
    raise TimeoutError("The Convex harness did not start in time.")


class ConvexHarness:
    """One harness process; ``new_deployment()`` hands out the URL of an empty deployment."""

    def __init__(self, *, server_secret: str | None = None) -> None:
        #: The deployment secret the functions expect (None: a deployment never configured).
        self.server_secret = server_secret
        self.url = ""
        self._process: subprocess.Popen[str] | None = None
        self._ids: dict[str, str] = {}

    def start(self) -> ConvexHarness:
        env = {k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_SERVER_SECRET"}
        if self.server_secret is not None:
            env["ORCHESTRATOR_SERVER_SECRET"] = self.server_secret
        self._process = subprocess.Popen(  # noqa: S603 (the repository's own harness script)
            ["node", str(SERVER)],  # noqa: S607 (node from PATH, as unavailable_reason checks)
            cwd=BACKEND_CONVEX,
            env=env,
            stdin=subprocess.PIPE,  # the harness exits when this closes
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        try:
            line = _read_line(self._process.stdout, time.monotonic() + START_TIMEOUT)
        except TimeoutError:
            self.stop()
            raise
        if not line.startswith(READY):
            self.stop()
            raise RuntimeError(f"The Convex harness failed to start: {line!r}")
        self.url = line[len(READY) :].strip()
        return self

    def new_deployment(
        self, *, transaction_limits: dict[str, int] | None = None, sync: bool = False
    ) -> str:
        """The URL of a fresh, empty deployment (what ``CONVEX_URL`` would be).

        ``transaction_limits`` lowers some of Convex's per-call limits (``bytesRead``,
        ``documentsRead``, ``documentsWritten``...) so a test reaches them with little data.
        With ``sync`` the deployment has a port of its own that also serves the stand-in
        for Convex's sync protocol (``/api/sync``), so the official ``ConvexClient`` can
        subscribe to it.
        """
        options: dict[str, object] = {"sync": sync}
        if transaction_limits:
            options["transactionLimits"] = transaction_limits
        request = urllib.request.Request(  # noqa: S310 (the harness's own http URL)
            f"{self.url}/_harness/deployments", data=json.dumps(options).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            created = json.load(response)
        url = f"http://127.0.0.1:{int(created['port'])}" if sync else f"{self.url}/{created['id']}"
        self._ids[url] = created["id"]
        return url

    def calls(self, deployment_url: str) -> dict[str, int]:
        """How many times each function of a deployment was called (API and subscriptions)."""
        deployment = self._ids[deployment_url]
        with urllib.request.urlopen(  # noqa: S310
            f"{self.url}/_harness/deployments/{deployment}/calls", timeout=10
        ) as response:
            return {path: int(count) for path, count in json.load(response).items()}

    def documents_written(self, deployment_url: str) -> int:
        """Documents a deployment has inserted, patched, replaced or deleted so far."""
        deployment = self._ids[deployment_url]
        with urllib.request.urlopen(  # noqa: S310
            f"{self.url}/_harness/deployments/{deployment}/writes", timeout=10
        ) as response:
            return int(json.load(response)["documents"])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            stop_process(process)
        if process.stdout is not None:
            process.stdout.close()


def new_server_secret() -> str:
    """A fresh deployment secret (what ``ORCHESTRATOR_SERVER_SECRET`` would be)."""
    return secrets.token_hex(32)

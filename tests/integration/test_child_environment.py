"""What opencode, its tools and git inherit from a real machine process: none of our secrets.

Stand-ins for ``opencode`` and ``git`` record their environment and exit; the
real ``orchestrator worker start`` launches them through the real adapters
(a worker coming online reads its models; a clone command runs git), with the
variables a machine process has on each backend set: ``MACHINE_TOKEN``, the
server's secret, ``ORCHESTRATOR_*`` and ``CONVEX_*``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest

from orchestrator.adapters.convex import ConvexBackend, HttpTransport
from orchestrator.domain.commands import CommandArguments, CommandKind
from tests.contract.convex_harness import ConvexHarness
from tests.integration.harness import (
    cli_env,
    cli_process,
    create_user_and_machine,
    running_server,
    stop,
    wait_for_line,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

SERVER_SECRET = "srv_secret_never_for_children"
#: Ours: none of these may reach a child.
SECRETS = {
    "ORCHESTRATOR_SERVER_SECRET": SERVER_SECRET,
    "ORCHESTRATOR_SERVER": "http://127.0.0.1:9",
    "CONVEX_DEPLOY_KEY": "prod:deploy-key-never-for-children",
}
#: What the user configured for opencode or their network: all of these pass.
PASSED = {
    "ANTHROPIC_API_KEY": "sk-ant-user-key",
    "OPENAI_API_KEY": "sk-user-key",
    "HTTPS_PROXY": "http://proxy.example:3128",
    "no_proxy": "localhost",
    "SSH_AUTH_SOCK": "/tmp/agent.sock",
    "LC_TIME": "C",
    "XDG_CONFIG_HOME": "/tmp/xdg-config",
    "TERM": "xterm",
}
RECORDER = """#!/bin/sh
env -0 > "{record}/$(basename "$0").$$"
exit 1
"""


def stand_ins(tmp_path: Path) -> tuple[Path, Path]:
    """A bin folder whose ``opencode`` and ``git`` record their environment; and the records."""
    bin_dir, records = tmp_path / "bin", tmp_path / "records"
    bin_dir.mkdir()
    records.mkdir()
    for name in ("opencode", "git"):
        script = bin_dir / name
        script.write_text(RECORDER.format(record=records))
        script.chmod(0o755)
    return bin_dir, records


def machine_env(base: dict[str, str], bin_dir: Path, token: str) -> dict[str, str]:
    env = {**base, **SECRETS, **PASSED, "MACHINE_TOKEN": token}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    env["OPENCODE_BIN"] = str(bin_dir / "opencode")
    return env


def recorded(records: Path, name: str, timeout: float = 60) -> dict[str, str]:
    """The environment the stand-in ``name`` saw, once it has run."""
    deadline = time.monotonic() + timeout
    while not (found := sorted(records.glob(f"{name}.*"))):
        assert time.monotonic() < deadline, f"{name} was never started"
        time.sleep(0.1)
    time.sleep(0.2)  # let the stand-in finish writing
    pairs = (item.split("=", 1) for item in found[0].read_text().split("\0") if "=" in item)
    return dict(pairs)


def assert_clean(env: dict[str, str], token: str) -> None:
    ours = [k for k in env if k.startswith(("ORCHESTRATOR_", "CONVEX_", "MACHINE_"))]
    assert ours == []
    leaked = [k for k, v in env.items() if token in v or SERVER_SECRET in v or "deploy-key" in v]
    assert leaked == []
    for name, value in PASSED.items():
        assert env.get(name) == value, name


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return cli_process(["worker", "start", *args, "--heartbeat", "0.5"], env, cwd)


async def test_the_embedded_machine_passes_no_secret_to_opencode_or_git(tmp_path: Path) -> None:
    """Embedded backend: opencode and git see the user's keys and proxies, none of our secrets."""
    bin_dir, records = stand_ins(tmp_path)
    data_dir, root = tmp_path / "data", tmp_path / "root"
    root.mkdir()
    with running_server(data_dir) as server:
        token = create_user_and_machine(data_dir)
        machine_id = token.split(":")[0]
        env = machine_env(cli_env(data_dir), bin_dir, token)
        # No --token: the process takes it from MACHINE_TOKEN, as a deployment would.
        process = start(["--server", server.url, "--root", str(root)], env, tmp_path)
        lines: list[str] = []
        try:
            wait_for_line(process, r"Machine .* is online", lines)
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                call = _caller(http, server.url)
                await call("POST", "/api/login", {"username": "alice", "password": _PASSWORD})
                csrf = (await call("GET", "/api/session"))["csrf_token"]
                headers = {"X-CSRF-Token": csrf}
                worker = {"directory": ""}
                await call("POST", f"/api/machines/{machine_id}/workers", worker, headers)
                opencode = await anyio.to_thread.run_sync(recorded, records, "opencode")
                clone = {"kind": "git_clone", "url": "https://example.invalid/r.git", "path": "r"}
                await call("POST", f"/api/machines/{machine_id}/commands", clone, headers)
                git = await anyio.to_thread.run_sync(recorded, records, "git")
        finally:
            stop(process)
    assert_clean(opencode, token)
    assert_clean(git, token)
    assert git["GIT_TERMINAL_PROMPT"] == "0"


_PASSWORD = "correct horse battery"


def _caller(http: aiohttp.ClientSession, base: str) -> Callable[..., Awaitable[Any]]:
    async def call(
        method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> Any:
        async with http.request(method, base + path, json=body, headers=headers) as response:
            text = await response.text()
            assert response.status < 300, f"{method} {path}: {response.status} {text}"
            return json.loads(text) if text else None

    return call


async def test_the_convex_machine_passes_no_secret_to_opencode_or_git(
    harness: ConvexHarness, tmp_path: Path
) -> None:
    """Convex backend (CONVEX_URL set, as with ``up --convex-url``): no secret reaches a child."""
    bin_dir, records = stand_ins(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    url = harness.new_deployment()
    backend = ConvexBackend(
        HttpTransport(url, timeout=10, poll_interval=0.05), server_secret=harness.server_secret
    )
    try:
        user = await backend.create_user("alice", "plain-hash-not-used-here")
        machine, token = await backend.create_machine(user.user_id, "laptop")
        env = machine_env(cli_env(tmp_path / "data"), bin_dir, str(token))
        env.update(CONVEX_URL=url, CONVEX_TRANSPORT="http")
        process = start(["--root", str(root)], env, tmp_path)
        lines: list[str] = []
        try:
            wait_for_line(process, r"Machine .* is online", lines)
            await backend.add_worker(user.user_id, machine.machine_id, "", None)
            opencode = await anyio.to_thread.run_sync(recorded, records, "opencode")
            arguments = CommandArguments(path="r", url="https://example.invalid/r.git")
            await backend.create_command(
                user.user_id, machine.machine_id, CommandKind.GIT_CLONE, arguments
            )
            git = await anyio.to_thread.run_sync(recorded, records, "git")
        finally:
            stop(process)
    finally:
        await backend.close()
    assert_clean(opencode, str(token))
    assert_clean(git, str(token))
    assert url not in "".join(opencode.values())

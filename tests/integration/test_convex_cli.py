"""`orchestrator worker start` and `orchestrator serve` on Convex (the loopback harness)."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from orchestrator.adapters.convex import ConvexBackend, HttpTransport
from orchestrator.domain.model import MachineStatus
from tests.contract.convex_harness import ConvexHarness, unavailable_reason
from tests.integration.harness import (
    CLI,
    cli_env,
    cli_process,
    free_port,
    set_up_first_account,
    wait_for_line,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

if reason := unavailable_reason():
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture
async def deployment(harness: ConvexHarness) -> AsyncIterator[tuple[str, ConvexBackend]]:
    url = harness.new_deployment()
    backend = ConvexBackend(
        HttpTransport(url, timeout=10, poll_interval=0.05), server_secret=harness.server_secret
    )
    try:
        yield url, backend
    finally:
        await backend.close()


async def test_worker_start_with_a_convex_url_goes_online_and_offline(
    deployment: tuple[str, ConvexBackend], tmp_path: Path
) -> None:
    """The machine process talks to Convex directly: online, saved to .env, offline on SIGTERM."""
    url, backend = deployment
    user = await backend.create_user("alice", "plain-hash-not-used-here")
    machine, token = await backend.create_machine(user.user_id, "laptop")
    process = cli_process(
        ["worker", "start", "--convex-url", url, "--convex-transport", "http",
         "--token", str(token), "--root", str(tmp_path)],
        cli_env(tmp_path / "data"),
        tmp_path,
    )  # fmt: skip
    lines: list[str] = []
    try:
        wait_for_line(process, r"is online", lines)
        wait_for_line(process, r"Saved the machine token", lines)
        assert (await backend.get_machine(user.user_id, machine.machine_id)).status is (
            MachineStatus.ONLINE
        )
        saved = (tmp_path / ".env").read_text()
        assert f"CONVEX_URL={url}" in saved
        assert "ORCHESTRATOR_SERVER" not in saved
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert (await backend.get_machine(user.user_id, machine.machine_id)).status is (
        MachineStatus.OFFLINE
    )


def test_serve_on_convex_without_the_server_secret_says_how_to_set_it(
    harness: ConvexHarness, tmp_path: Path
) -> None:
    """Without ORCHESTRATOR_SERVER_SECRET the server refuses to start, with one sentence."""
    env = cli_env(tmp_path / "data")
    env.pop("ORCHESTRATOR_SERVER_SECRET", None)
    result = subprocess.run(
        [*CLI, "serve", "--port", str(free_port()), "--convex-url", harness.new_deployment()],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "ORCHESTRATOR_SERVER_SECRET" in result.stderr
    assert "Traceback" not in result.stderr


async def test_serve_on_convex_offers_setup_and_lists_machines(
    harness: ConvexHarness, tmp_path: Path
) -> None:
    """The web server works the same on Convex: first-run setup link, then the user API."""
    port = free_port()
    env = cli_env(tmp_path / "data", ORCHESTRATOR_SERVER_SECRET=harness.server_secret or "")
    process = cli_process(
        ["serve", "--port", str(port), "--convex-url", harness.new_deployment(),
         "--convex-transport", "http"],
        env,
    )  # fmt: skip
    lines: list[str] = []
    try:
        wait_for_line(process, r"running at", lines)
        link = wait_for_line(process, r"/setup\?token=", lines).split("open ")[1].split()[0]
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await set_up_first_account(http, link)
            async with http.get(f"http://127.0.0.1:{port}/api/session") as session:
                csrf = (await session.json())["csrf_token"]
            async with http.post(
                f"http://127.0.0.1:{port}/api/machines",
                json={"name": "laptop"},
                headers={"X-CSRF-Token": csrf},
            ) as made:
                assert made.status == 201, await made.text()
            with anyio.fail_after(10):
                async with http.get(f"http://127.0.0.1:{port}/api/machines") as listed:
                    names = [m["machine"]["name"] for m in (await listed.json())["machines"]]
        assert names == ["laptop"]
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
    assert "Traceback" not in "".join(lines)

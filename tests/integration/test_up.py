"""`orchestrator up`: the README's run command, from first run to this computer online."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.harness import CLI, cli_env, free_port, wait_for_line

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def test_setup_link_creates_the_account_and_this_computer_comes_online(
    tmp_path: Path,
) -> None:
    """The printed setup link makes the first account; this computer then shows up online."""
    port = free_port()
    root = tmp_path / "projects"
    root.mkdir()
    process = subprocess.Popen(
        [*CLI, "up", "--port", str(port), "--root", str(root)],
        env=cli_env(tmp_path / "data"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        wait_for_line(process, rf"running at http://127\.0\.0\.1:{port}", lines)
        link_line = wait_for_line(process, r"/setup\?token=", lines)
        link = re.search(r"(http://\S+/setup\?token=\S+)", link_line)
        assert link
        token = link.group(1).split("token=")[1]

        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(link.group(1)) as page:
                assert page.status == 200
                html = await page.text()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert csrf
            form = {
                "csrf_token": csrf.group(1),
                "token": token,
                "username": "alice",
                "password": "correct horse battery",
                "password_again": "correct horse battery",
            }
            async with http.post(
                f"http://127.0.0.1:{port}/setup", data=form, allow_redirects=False
            ) as created:
                assert created.status == 303

            wait_for_line(process, r"is online", lines)
            deadline = time.monotonic() + 10
            while True:
                async with http.get(f"http://127.0.0.1:{port}/api/machines") as listed:
                    assert listed.status == 200
                    machines = (await listed.json())["machines"]
                if machines and machines[0]["machine"]["status"] == "online":
                    break
                assert time.monotonic() < deadline, machines
                time.sleep(0.2)
            assert machines[0]["machine"]["name"].startswith("This computer")

            # The setup link works once.
            async with http.get(link.group(1)) as again:
                assert again.status == 403
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
    assert "Traceback" not in "".join(lines)

"""`orchestrator up`: the README's run command, from first run to this computer online."""

from __future__ import annotations

import re
import time
from pathlib import Path

import aiohttp
import pytest

from tests.integration.harness import (
    cli_env,
    cli_process,
    free_port,
    set_up_first_account,
    wait_for_line,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


async def test_setup_link_creates_the_account_and_this_computer_comes_online(
    tmp_path: Path,
) -> None:
    """The printed setup link makes the first account; this computer then shows up online."""
    port = free_port()
    root = tmp_path / "projects"
    root.mkdir()
    process = cli_process(
        ["up", "--port", str(port), "--root", str(root)], cli_env(tmp_path / "data")
    )
    lines: list[str] = []
    try:
        wait_for_line(process, rf"running at http://127\.0\.0\.1:{port}", lines)
        link_line = wait_for_line(process, r"/setup\?token=", lines)
        link = re.search(r"(http://\S+/setup\?token=\S+)", link_line)
        assert link

        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            await set_up_first_account(http, link.group(1))

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

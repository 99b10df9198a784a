"""The README's client script, run as written against a real server, machine and opencode."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import pytest

from tests.integration.chat_stage import worker_ready
from tests.integration.harness import NEEDS_OPENCODE

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_OPENCODE]

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- client-example -->"
REPLY = "A haiku, streamed: green tests at dawn, the reply arrives in pieces, nothing lost."


def readme_script() -> str:
    """The Python block right after the README's marker."""
    found = re.search(re.escape(MARKER) + r"\n```python\n(.*?)\n```", README.read_text(), re.S)
    assert found, f"README.md has no ```python block after {MARKER}"
    return found.group(1)


def test_the_readme_script_is_about_ten_lines() -> None:
    """The example stays short: at most a dozen lines of code."""
    lines = [line for line in readme_script().splitlines() if line.strip()]
    assert len(lines) <= 12


async def test_the_readme_script_prints_the_reply_as_the_model_sent_it(tmp_path: Path) -> None:
    """With a token made through the web API, the script prints exactly the model's reply."""
    script = tmp_path / "example.py"
    script.write_text(readme_script())
    async with worker_ready(tmp_path, reply=REPLY, delta_delay=0.01) as ready:
        env = {**ready.stage.env, "ORCHESTRATOR_URL": ready.stage.server.url}
        env["ORCHESTRATOR_TOKEN"] = await ready.api_token("readme")
        with anyio.fail_after(120):
            run = await anyio.run_process([sys.executable, str(script)], env=env, check=False)
        assert run.returncode == 0, run.stderr.decode()
        assert run.stdout.decode() == REPLY
        assert any(
            "Write a haiku" in t for r in ready.stage.model.chat_requests for t in r.user_texts
        )
        [token] = (await ready.api.call("GET", "/api/tokens"))["tokens"]
        assert token["last_used_at"] is not None
    assert ready.machine.returncode == 0, "".join(ready.lines)

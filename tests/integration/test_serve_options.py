"""`serve`/`up` behind a proxy (--public-url, --trusted-proxy) and --log-level."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.entrypoints.cli import app
from tests.integration.harness import cli_env, cli_process, free_port, wait_for_line

runner = CliRunner()


@pytest.mark.slow
def test_the_public_url_is_printed_and_used_in_the_setup_link(tmp_path: Path) -> None:
    """With --public-url the URL, the setup link and the debug log all use it."""
    port = free_port()
    process = cli_process(
        ["serve", "--port", str(port), "--public-url", "https://orch.example.com/"],
        cli_env(tmp_path / "data", ORCHESTRATOR_LOG_LEVEL="debug"),
    )
    lines: list[str] = []
    try:
        wait_for_line(process, r"running at https://orch\.example\.com$", lines)
        wait_for_line(process, r"open https://orch\.example\.com/setup\?token=", lines)
        # Logged at start-up, before the URL is printed.
        debug = "DEBUG orchestrator.entrypoints.web.app: No account yet"
        assert any(debug in line for line in lines), lines
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
    assert "Traceback" not in "".join(lines)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["serve", "--public-url", "orch.example.com"], "must start with http:// or https://"),
        (["up", "--trusted-proxy", "proxy.local"], "not an IP address or CIDR range"),
        (["--log-level", "loud", "serve"], "--log-level must be one of"),
    ],
)
def test_bad_server_options_are_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], sentence: str
) -> None:
    """A bad public URL, proxy or log level: exit 2 with one sentence, no data created."""
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert sentence in result.output
    assert not (tmp_path / "data").exists()

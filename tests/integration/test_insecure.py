"""A machine token is not sent over plain http off this computer without --insecure."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from orchestrator.domain.errors import InvalidInput
from orchestrator.entrypoints import envfile
from orchestrator.entrypoints.options import plain_http_warning
from tests.integration.harness import CLI, cli_env, wait_for_line

#: Not loopback by name, yet refused at once by this computer (nothing listens on port 9).
OFF_HOST = "http://0.0.0.0:9"


@pytest.mark.parametrize(
    "url",
    [
        "https://orch.example.com",
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://localhost:8080",
        "http://[::1]:8080",
    ],
)
def test_https_and_loopback_need_no_opt_in(url: str) -> None:
    """https anywhere and http on this computer are fine as they are."""
    assert plain_http_warning(url, insecure=False) is None


@pytest.mark.parametrize("url", ["http://192.168.1.20:8080", "http://orch.example.com"])
def test_plain_http_elsewhere_is_refused_or_warned(url: str) -> None:
    """Plain http to another host: refused with the way out, or a warning with --insecure."""
    with pytest.raises(InvalidInput, match="pass --insecure"):
        plain_http_warning(url, insecure=False)
    warning = plain_http_warning(url, insecure=True)
    assert warning is not None
    assert "unencrypted" in warning


def _worker(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, "worker", "start", "--server", OFF_HOST, "--root", str(tmp_path), *args],
        cwd=tmp_path,
        env=cli_env(tmp_path / "data", MACHINE_TOKEN="mch_a:sec_b"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_worker_start_refuses_plain_http_off_host_without_insecure(tmp_path: Path) -> None:
    """Without --insecure: exit 2, one sentence, nothing sent and nothing saved."""
    process = _worker(tmp_path)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 2
    assert f"{OFF_HOST} is plain http" in output
    assert "--insecure" in output
    assert not (tmp_path / ".env").exists()


@pytest.mark.slow
def test_worker_start_with_insecure_warns_and_goes_on(tmp_path: Path) -> None:
    """With --insecure it says the token goes unencrypted, then tries the server."""
    process = _worker(tmp_path, "--insecure")
    lines: list[str] = []
    try:
        wait_for_line(process, r"Warning: the machine token goes to .* unencrypted", lines)
        wait_for_line(process, r"Reconnecting in", lines)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert "Traceback" not in "".join(lines)


@pytest.mark.slow
def test_worker_register_honours_the_saved_opt_in(tmp_path: Path) -> None:
    """register refuses a plain-http server unless the machine's .env records the opt-in."""
    env_file = tmp_path / ".env"
    values = {
        envfile.MACHINE_TOKEN: "mch_a:sec_b",
        envfile.ROOT_DIRECTORY: str(tmp_path),
        envfile.SERVER_URL: OFF_HOST,
    }
    envfile.write_env_file(env_file, values)

    def register() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "worker", "register", "machine_mch_a:worker_wrk_b"],
            cwd=tmp_path,
            env=cli_env(tmp_path / "data"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = register()
    assert refused.returncode == 2
    assert "plain http" in refused.stderr

    envfile.write_env_file(env_file, {envfile.INSECURE: "1"})
    allowed = register()
    assert "unencrypted" in allowed.stderr
    assert allowed.returncode == 6  # it tried: nothing listens there

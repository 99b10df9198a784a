"""The README's commands on a fresh checkout with Debian's own Python, nothing installed yet."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.integration.first_run import (
    DEBIAN_PYTHON,
    debian_environment,
    fresh_checkout,
    group_members,
    share_opencode_modules,
    start_serve,
    stop,
)
from tests.integration.harness import free_port, wait_for_line

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not DEBIAN_PYTHON.exists(), reason="needs Debian's /usr/bin/python3"),
]


def _serve_once(checkout: Path, env: dict[str, str], root: Path) -> str:
    port = free_port()
    process = start_serve(checkout, env, "--port", str(port), "--root", str(root))
    lines: list[str] = []
    try:
        wait_for_line(process, rf"running at http://127\.0\.0\.1:{port}", lines, timeout=600)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=10) as page:
            assert page.status == 200
            assert "Sign in" in page.read().decode()
    finally:
        assert stop(process) in (0, -15), "".join(lines)
    return "".join(lines)


def test_run_serve_answers_on_a_fresh_checkout_and_the_second_start_installs_nothing(
    tmp_path: Path,
) -> None:
    """`./run serve` with Debian's python3 makes its venv, serves the page, and reuses it all."""
    checkout = fresh_checkout(tmp_path / "repo")
    share_opencode_modules(checkout)
    env = debian_environment(tmp_path / "home")
    root = tmp_path / "home" / "projects"
    root.mkdir(parents=True)

    first = _serve_once(checkout, env, root)
    assert "Installing nox" in first
    venv_python = (checkout / ".venv" / "bin" / "python").resolve()
    assert venv_python.is_relative_to("/usr"), venv_python  # Debian's, not pyenv's

    second = _serve_once(checkout, env, root)
    assert "Installing nox" not in second
    assert "is current; not reinstalling" in second
    assert "Traceback" not in first + second


def test_the_test_command_runs_from_a_fresh_checkout(tmp_path: Path) -> None:
    """The README's `./run test`, narrowed to its lint session, runs with Debian's python3."""
    checkout = fresh_checkout(tmp_path / "repo")
    env = debian_environment(tmp_path / "home")
    # `./run test` passes its arguments to nox: `-s lint` keeps this from running the
    # whole suite inside itself, while the bootstrap is exactly the README's command.
    done = subprocess.run(
        ["./run", "test", "-s", "lint"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Session lint was successful" in done.stdout + done.stderr


def test_run_without_a_command_prints_the_usage_and_exits_2(tmp_path: Path) -> None:
    """`./run` alone names its commands and installs nothing."""
    checkout = fresh_checkout(tmp_path / "repo")
    done = subprocess.run(
        ["./run"],
        cwd=checkout,
        env=debian_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "./run serve" in done.stderr
    assert not (checkout / ".venv").exists()


def test_without_python3_venv_a_user_is_told_what_to_install(tmp_path: Path) -> None:
    """A non-root user whose python3 cannot make a venv gets the apt-get line, exit 1."""
    checkout = fresh_checkout(tmp_path / "repo")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Debian's python3 as it is without python3-venv, and a user who is not root.
    (bin_dir / "python3").write_text(
        f'#!/bin/sh\n[ "$1 $2" = "-m venv" ] && exit 1\nexec {DEBIAN_PYTHON} "$@"\n'
    )
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    for tool in ("python3", "id"):
        (bin_dir / tool).chmod(0o755)
    env = debian_environment(tmp_path / "home")
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    done = subprocess.run(
        ["./run", "lint"], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "run 'sudo apt-get install python3-venv'" in done.stderr
    assert not (checkout / ".venv").exists()


def test_stop_leaves_no_process_of_the_serve_group_behind(tmp_path: Path) -> None:
    """A server child that ignores SIGTERM after its parent exits is killed with the group."""
    checkout = tmp_path / "repo"
    checkout.mkdir()
    # Like nox under `./run serve`: the parent dies on SIGTERM, its server child lingers.
    (checkout / "run").write_text(
        "#!/bin/sh\n"
        f"{DEBIAN_PYTHON} -c 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        ' print("running", flush=True); time.sleep(600)\' &\n'
        "wait\n"
    )
    (checkout / "run").chmod(0o755)
    process = start_serve(checkout, debian_environment(tmp_path / "home"))
    wait_for_line(process, "running", [], timeout=60)
    assert group_members(process.pid)
    stop(process, grace=1)
    assert group_members(process.pid) == []

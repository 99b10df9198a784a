"""`worker register` finds the machine's .env from the worker's folder; tokens stay off argv."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import anyio
import pytest

from orchestrator.application import machines
from tests.integration.harness import (
    CLI,
    Server,
    cli_env,
    create_user_and_machine,
    only_machine,
    run_cli,
    server_database,
    signal_to_end,
    spawn_cli,
    wait_for_line,
)

pytestmark = pytest.mark.slow


def worker_token(data_dir: Path) -> str:
    """A fresh worker token for alice's only machine, as the web UI's dialog makes one."""

    async def issue() -> str:
        async with server_database(data_dir) as backend:
            user, machine = await only_machine(backend)
            return str(await machines.issue_worker_token(backend, user, machine.machine_id))

    return anyio.run(issue)


def start_once(served: Server, cwd: Path, root: Path, *args: str, stdin: str = "") -> None:
    """`worker start` in ``cwd`` until it is online and saved its .env, then SIGTERM."""
    process = subprocess.Popen(
        [*CLI, "worker", "start", "--server", served.url, "--root", str(root), *args],
        cwd=cwd,
        env=cli_env(served.data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdin is not None
    process.stdin.write(stdin)
    process.stdin.close()
    lines: list[str] = []
    try:
        wait_for_line(process, "Saved the machine token", lines)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, "".join(lines)


def register(
    data_dir: Path, cwd: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return run_cli(["worker", "register", *args], data_dir, input=stdin, cwd=cwd)


def test_register_in_a_subfolder_of_the_root_finds_the_env_upwards(
    served: Server, data_dir: Path, tmp_path: Path
) -> None:
    """With .env in the root, `register TOKEN` in a folder below it works as the dialog shows."""
    token_file = tmp_path / "token"
    token_file.write_text(create_user_and_machine(data_dir) + "\n")
    root = tmp_path / "projects"
    (root / "app" / "src").mkdir(parents=True)
    start_once(served, root, root, "--token-file", str(token_file))
    assert "MACHINE_TOKEN=mch_" in (root / ".env").read_text()
    (data_dir / "machine-env-file").unlink()  # only the walk upwards can find it now

    done = register(data_dir, root / "app" / "src", worker_token(data_dir))
    assert done.returncode == 0, done.stderr
    assert "for app/src" in done.stdout


def test_register_elsewhere_uses_the_env_that_worker_start_used(
    served: Server, data_dir: Path, tmp_path: Path
) -> None:
    """With .env outside the root, `register` in the worker's folder finds it all the same."""
    token = create_user_and_machine(data_dir)
    machine_dir, root = tmp_path / "machine", tmp_path / "projects"
    machine_dir.mkdir()
    (root / "lib").mkdir(parents=True)
    start_once(served, machine_dir, root, "--token", "-", stdin=token + "\n")
    assert "MACHINE_TOKEN=mch_" in (machine_dir / ".env").read_text()

    done = register(data_dir, root / "lib", "-", stdin=worker_token(data_dir) + "\n")
    assert done.returncode == 0, done.stderr
    assert "for lib" in done.stdout


def test_register_without_any_machine_says_where_it_looked(data_dir: Path, tmp_path: Path) -> None:
    """No .env anywhere: one sentence naming the folders searched and `worker start`."""
    folder = tmp_path / "projects" / "app"
    folder.mkdir(parents=True)
    (tmp_path / "projects" / ".env").write_text("OTHER=1\n")  # a project's own .env is skipped
    done = register(data_dir, folder, "machine_mch_a:worker_wrk_b")
    assert done.returncode == 2
    assert f"in {folder} or their parents" in done.stderr
    assert "orchestrator worker start" in done.stderr
    assert "Traceback" not in done.stderr


def test_register_without_a_token_and_no_terminal_says_how_to_pass_it(
    data_dir: Path, tmp_path: Path
) -> None:
    """No token argument and no terminal: a sentence, not a hang."""
    env_file = tmp_path / ".env"
    env_file.write_text(f"MACHINE_TOKEN=mch_a:sec_b\nROOT_DIRECTORY={tmp_path}\n")
    done = register(data_dir, tmp_path)
    assert done.returncode == 2
    assert "No worker token" in done.stderr


def test_an_unreadable_token_file_is_one_sentence(data_dir: Path, tmp_path: Path) -> None:
    """`--token-file` that does not exist: exit 2, nothing saved."""
    args = ["worker", "start", "--token-file", str(tmp_path / "missing"), "--root", "."]
    done = run_cli(args, data_dir, input="", cwd=tmp_path)
    assert done.returncode == 2
    assert "Cannot read the token file" in done.stderr
    assert not (tmp_path / ".env").exists()


def test_the_root_prompt_offers_the_home_folder(
    served: Server, data_dir: Path, tmp_path: Path
) -> None:
    """Pressing Enter at the root prompt picks the home folder, as the README shows."""
    token = create_user_and_machine(data_dir)
    home = tmp_path / "home"
    home.mkdir()
    child = spawn_cli(
        ["worker", "start", "--server", served.url], data_dir, tmp_path, HOME=str(home)
    )
    child.expect_exact("Enter machine token (from web UI):")
    child.sendline(token)
    child.expect_exact(f"Root directory for this machine's workers [{home}]:")
    child.sendline("")
    child.expect("Saved the machine token")
    signal_to_end(child, signal.SIGTERM)
    assert f"ROOT_DIRECTORY={home}" in (tmp_path / ".env").read_text()

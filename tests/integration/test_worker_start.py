"""`orchestrator worker start` as a real subprocess against a real server (flow 1)."""

from __future__ import annotations

import signal
import stat
import subprocess
import time
from pathlib import Path

import anyio
import pexpect
import pytest

from orchestrator.domain.model import Machine, MachineStatus
from tests.integration.harness import (
    Server,
    cli_env,
    cli_process,
    create_user_and_machine,
    free_port,
    only_machine,
    run_cli,
    running_server,
    server_database,
    signal_to_end,
    spawn_cli,
    wait_for_line,
)

pytestmark = pytest.mark.slow


async def machine_record(data_dir: Path, username: str = "alice") -> Machine:
    async with server_database(data_dir) as backend:
        return (await only_machine(backend, username))[1]


def spawn_worker(server_url: str, data_dir: Path, cwd: Path, *args: str) -> pexpect.spawn:
    """`worker start ARGS` on a pseudo-terminal, heartbeating every half second."""
    args = ("worker", "start", "--server", server_url, "--heartbeat", "0.5", *args)
    return spawn_cli(args, data_dir, cwd)


def run_worker(
    server_url: str, data_dir: Path, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_cli(["worker", "start", "--server", server_url, *args], data_dir, input="", cwd=cwd)


@pytest.mark.anyio
async def test_first_start_asks_saves_and_goes_online_then_offline_on_sigterm(
    served: Server, data_dir: Path, tmp_path: Path
) -> None:
    """First start: prompts, saves .env 0600, heartbeats; SIGTERM takes it offline."""
    token = create_user_and_machine(data_dir)
    workdir = tmp_path / "machine"
    workdir.mkdir()
    root = tmp_path / "projects"
    root.mkdir()

    child = spawn_worker(served.url, data_dir, workdir)
    child.expect_exact("Enter machine token (from web UI):")
    child.sendline(token)
    child.expect("Root directory for this machine's workers")
    child.sendline(str(root))
    child.expect("is online")
    child.expect("Saved the machine token")

    env_file = workdir / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    content = env_file.read_text()
    assert f"MACHINE_TOKEN={token}" in content
    assert f"ROOT_DIRECTORY={root.resolve()}" in content

    first = await machine_record(data_dir)
    assert first.status is MachineStatus.ONLINE
    assert first.root_directory == str(root.resolve())
    deadline = time.monotonic() + 10
    while (await machine_record(data_dir)).last_heartbeat == first.last_heartbeat:
        assert time.monotonic() < deadline, "no heartbeat within 10 s"
        time.sleep(0.2)

    assert signal_to_end(child, signal.SIGTERM) == 0
    assert (await machine_record(data_dir)).status is MachineStatus.OFFLINE

    # A second start reads .env and asks nothing.
    again = spawn_worker(served.url, data_dir, workdir)
    index = again.expect(["is online", "Enter machine token", "Root directory"])
    assert index == 0, again.before
    assert signal_to_end(again, signal.SIGINT) == 0
    assert (await machine_record(data_dir)).status is MachineStatus.OFFLINE


@pytest.mark.parametrize(
    "bad",
    [
        "no-colon-here",
        "a:b:c",
        ":secret",
        "mch_abc:",
        "mch abc:sec",
        "mch_abc:sec$%",
        " mch_abc:sec_def",
        "mch_abc:sec_def ",
    ],
)
def test_malformed_token_is_refused_before_anything_else(
    bad: str, data_dir: Path, tmp_path: Path
) -> None:
    """A malformed token gets the format sentence, exit 2, and no .env -- no server needed."""
    result = run_worker(
        "http://127.0.0.1:9", data_dir, tmp_path, "--token", bad, "--root", str(tmp_path)
    )
    assert result.returncode == 2
    assert "Invalid token format. Expected: <machine_id>:<machine_secret>" in result.stderr
    assert not (tmp_path / ".env").exists()


def test_wrong_secret_and_unknown_machine_say_invalid_token(
    served: Server, data_dir: Path, tmp_path: Path
) -> None:
    """A well-formed token with a wrong secret or unknown machine: "Invalid token", no .env."""
    token = create_user_and_machine(data_dir)
    machine_id = token.split(":")[0]
    for bad in (f"{machine_id}:sec_wrong", "mch_unknown:sec_whatever"):
        result = run_worker(served.url, data_dir, tmp_path, "--token", bad, "--root", str(tmp_path))
        assert result.returncode == 3, result.stderr
        assert "Invalid token" in result.stderr
        assert not (tmp_path / ".env").exists()


def test_deleted_machine_token_is_refused(served: Server, data_dir: Path, tmp_path: Path) -> None:
    """Once its machine is deleted, a token no longer authenticates."""
    token = create_user_and_machine(data_dir)

    async def delete() -> None:
        async with server_database(data_dir) as backend:
            user, machine = await only_machine(backend)
            await backend.delete_machine(user, machine.machine_id)

    anyio.run(delete)
    result = run_worker(served.url, data_dir, tmp_path, "--token", token, "--root", str(tmp_path))
    assert result.returncode == 3
    assert "Invalid token" in result.stderr
    assert not (tmp_path / ".env").exists()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_root_directory_is_refused(kind: str, data_dir: Path, tmp_path: Path) -> None:
    """A root that does not exist or is a file is one sentence, exit 2, nothing saved."""
    root = tmp_path / "nope"
    if kind == "file":
        root.write_text("x")
    result = run_worker(
        "http://127.0.0.1:9", data_dir, tmp_path, "--token", "mch_a:sec_b", "--root", str(root)
    )
    assert result.returncode == 2
    assert ("does not exist" if kind == "missing" else "is a file") in result.stderr
    assert not (tmp_path / ".env").exists()


def test_no_terminal_and_no_token_exits_with_a_sentence(data_dir: Path, tmp_path: Path) -> None:
    """With no terminal and no token the process does not wait for input."""
    result = run_worker("http://127.0.0.1:9", data_dir, tmp_path)
    assert result.returncode == 2
    assert "No machine token" in result.stderr
    assert "Traceback" not in result.stderr


def test_server_down_retries_then_connects_when_it_comes_up(data_dir: Path, tmp_path: Path) -> None:
    """Server down: one "Reconnecting in" line, online once up, "Reconnected." after a drop."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(data_dir, port):
        token = create_user_and_machine(data_dir)
    process = cli_process(
        ["worker", "start", "--server", url, "--token", token, "--root", str(tmp_path)],
        cli_env(data_dir),
        tmp_path,
    )
    lines: list[str] = []
    try:
        wait_for_line(process, r"Reconnecting in", lines)
        assert not (tmp_path / ".env").exists()
        with running_server(data_dir, port) as first:
            wait_for_line(process, r"is online", lines)
            wait_for_line(process, r"Saved the machine token", lines)
            assert (tmp_path / ".env").exists()
            # The server dies under a running machine and comes back: one line each way,
            # though the heartbeat, workers, chat sessions and commands all lose it.
            outage = len(lines)
            first.process.kill()
            first.process.wait(timeout=10)
        wait_for_line(process, r"Reconnecting in", lines)
        with running_server(data_dir, port):
            wait_for_line(process, r"Reconnected\.", lines)
            assert sum("Reconnecting" in line for line in lines[outage:]) == 1, lines
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in "".join(lines)

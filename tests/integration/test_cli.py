"""The admin commands of the CLI against a real data directory."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.entrypoints import envfile
from orchestrator.entrypoints.cli import app

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", str(path))
    for name in ("MACHINE_TOKEN", "ROOT_DIRECTORY", "ORCHESTRATOR_SERVER"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_help_lists_every_command() -> None:
    """`orchestrator --help` names the commands a user needs."""
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "up", "user", "machine", "worker"):
        assert command in result.output


def test_user_machine_create_and_list(data_dir: Path) -> None:
    """A user and a machine made from the CLI show up in `machine list`, token shown once."""
    created = runner.invoke(
        app, ["user", "create", "alice", "--password-stdin"], input="long enough pw\n"
    )
    assert created.exit_code == 0, created.output
    assert (data_dir / "orchestrator.sqlite3").exists()

    empty = runner.invoke(app, ["machine", "list", "--user", "alice"])
    assert "No machines yet" in empty.output

    made = runner.invoke(app, ["machine", "create", "laptop", "--user", "alice"])
    assert made.exit_code == 0, made.output
    token = re.search(r"^  (mch_\S+)$", made.output, re.MULTILINE)
    assert token
    assert token.group(1).startswith("mch_")
    assert "shown only this once" in made.output

    listed = runner.invoke(app, ["machine", "list", "--user", "alice"])
    assert "laptop" in listed.output
    assert "offline" in listed.output
    assert token.group(1).split(":")[1] not in listed.output


def test_user_create_refuses_duplicates_and_short_passwords(data_dir: Path) -> None:
    """Bad accounts are one sentence with a non-zero exit."""
    assert (
        runner.invoke(
            app, ["user", "create", "bob", "--password-stdin"], input="long enough pw\n"
        ).exit_code
        == 0
    )
    again = runner.invoke(
        app, ["user", "create", "bob", "--password-stdin"], input="long enough pw\n"
    )
    assert again.exit_code == 5
    short = runner.invoke(app, ["user", "create", "carol", "--password-stdin"], input="short\n")
    assert short.exit_code == 2
    assert "at least 8 characters" in short.output


def test_machine_create_for_unknown_user(data_dir: Path) -> None:
    """Creating a machine for a user that does not exist says how to create one."""
    result = runner.invoke(app, ["machine", "create", "laptop", "--user", "nobody"])
    assert result.exit_code == 4
    assert "orchestrator user create" in result.output


def test_worker_register_without_setup_says_what_to_do(data_dir: Path, tmp_path: Path) -> None:
    """`worker register` before `worker start` points at `worker start`."""
    result = runner.invoke(
        app,
        ["worker", "register", "machine_mch_a:worker_wrk_b", "--env-file", str(tmp_path / ".env")],
    )
    assert result.exit_code == 2
    assert "orchestrator worker start" in result.output


def test_worker_register_refuses_malformed_worker_token(data_dir: Path, tmp_path: Path) -> None:
    """A malformed worker token is refused before the server is contacted."""
    env_file = tmp_path / ".env"
    envfile.write_env_file(
        env_file, {envfile.MACHINE_TOKEN: "mch_a:sec_b", envfile.ROOT_DIRECTORY: str(tmp_path)}
    )
    result = runner.invoke(app, ["worker", "register", "mch_a:wrk_b", "--env-file", str(env_file)])
    assert result.exit_code == 2
    assert "machine_<machine_id>:worker_<worker_id>" in result.output


def test_env_file_is_private_and_keeps_other_lines(tmp_path: Path) -> None:
    """The .env is mode 0600 and updating it keeps unrelated settings."""
    path = tmp_path / ".env"
    path.write_text("OTHER=1\n")
    envfile.write_env_file(path, {envfile.MACHINE_TOKEN: "mch_a:sec_b"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = envfile.read_env_file(path)
    assert values == {"OTHER": "1", "MACHINE_TOKEN": "mch_a:sec_b"}
    assert envfile.read_env_file(tmp_path / "missing") == {}


@pytest.mark.parametrize("command", [["up"], ["worker", "start"]])
@pytest.mark.parametrize(
    ("variable", "value", "option"),
    [
        ("IDLE_TIMEOUT", "0", "--idle-timeout"),
        ("HEARTBEAT_INTERVAL", "0", "--heartbeat"),
        ("PROCESS_POLICY", "forever", "--process-policy"),
    ],
)
def test_up_and_worker_start_read_the_same_machine_settings(
    data_dir: Path, command: list[str], variable: str, value: str, option: str
) -> None:
    """`up` and `worker start` both honour IDLE_TIMEOUT and co.: a bad value is refused."""
    result = runner.invoke(app, command, env={variable: value})
    assert result.exit_code == 2
    assert option in result.output
    assert not (data_dir / "orchestrator.sqlite3").exists()


def test_machine_create_shows_a_command_without_the_token(data_dir: Path) -> None:
    """`machine create` prints the token once, and a command that asks for it."""
    runner.invoke(app, ["user", "create", "alice", "--password-stdin"], input="long enough pw\n")
    made = runner.invoke(app, ["machine", "create", "laptop", "--user", "alice"])
    assert made.exit_code == 0, made.output
    token = re.search(r"^  (mch_\S+)$", made.output, re.MULTILINE)
    assert token
    command = next(line for line in made.output.splitlines() if "worker start" in line)
    assert command.strip() == "orchestrator worker start --server http://127.0.0.1:8080"

"""`worker install-service`: a systemd user unit (or launchd agent) that keeps the token out."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
from pathlib import Path

import attrs
import pytest

from orchestrator.entrypoints import envfile, service
from tests.integration.harness import CLI, cli_env

pytestmark = pytest.mark.slow

TOKEN = "mch_abc:sec_very_secret"


@attrs.frozen
class Computer:
    """A temp config home, a machine .env, and stand-ins for systemctl/launchctl on PATH."""

    home: Path
    env_file: Path
    calls: Path

    @property
    def env(self) -> dict[str, str]:
        path = f"{self.home / 'bin'}{os.pathsep}{os.environ['PATH']}"
        return cli_env(
            self.home / "data",
            HOME=str(self.home),
            XDG_CONFIG_HOME=str(self.home / "config"),
            PATH=path,
        )

    def recorded(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [line.split("\t") for line in self.calls.read_text().splitlines()]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, "worker", *args],
            cwd=self.env_file.parent,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def computer(tmp_path: Path) -> Computer:
    home = tmp_path / "home 100%"  # a space and a % that the unit file must escape
    machine = home / "machine"
    machine.mkdir(parents=True)
    env_file = machine / ".env"
    envfile.write_env_file(
        env_file, {envfile.MACHINE_TOKEN: TOKEN, envfile.ROOT_DIRECTORY: str(home)}
    )
    calls = tmp_path / "calls"
    (home / "bin").mkdir()
    for tool in ("systemctl", "launchctl"):
        stand_in = home / "bin" / tool
        # One line per call, arguments separated by tabs (paths here contain spaces).
        stand_in.write_text(
            f"#!/bin/sh\n{{ printf %s {tool}; printf '\\t%s' \"$@\"; echo; }} >> '{calls}'\n"
        )
        stand_in.chmod(0o755)
    return Computer(home, env_file, calls)


def test_install_writes_a_unit_that_systemd_accepts_and_enables_it(computer: Computer) -> None:
    """The unit passes `systemd-analyze verify`, holds no token, and is enabled with --now."""
    done = computer.cli("install-service")
    assert done.returncode == 0, done.stderr
    unit = computer.home / "config" / "systemd" / "user" / service.SYSTEMD_UNIT
    text = unit.read_text()
    assert "sec_very_secret" not in text
    assert "--env-file" in text
    assert computer.recorded() == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", service.SYSTEMD_UNIT],
    ]
    assert stat.S_IMODE(computer.env_file.stat().st_mode) == 0o600
    assert "loginctl enable-linger" in done.stdout

    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: apt-get install systemd (nox -s tests does)"
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_status_and_uninstall_call_systemctl_and_remove_the_unit(computer: Computer) -> None:
    """status asks systemctl; uninstall disables, removes the unit and reloads; .env stays."""
    assert computer.cli("install-service").returncode == 0
    computer.calls.unlink()
    assert computer.cli("service-status").returncode == 0
    done = computer.cli("uninstall-service")
    assert done.returncode == 0, done.stderr
    assert computer.recorded() == [
        ["systemctl", "--user", "status", "--no-pager", service.SYSTEMD_UNIT],
        ["systemctl", "--user", "disable", "--now", service.SYSTEMD_UNIT],
        ["systemctl", "--user", "daemon-reload"],
    ]
    assert not (computer.home / "config" / "systemd" / "user" / service.SYSTEMD_UNIT).exists()
    assert computer.env_file.exists()
    again = computer.cli("uninstall-service")
    assert again.returncode == 2
    assert "No service installed" in again.stderr


def test_install_without_a_machine_says_to_start_it_first(computer: Computer) -> None:
    """No token in the .env: one sentence, no unit written, systemctl never called."""
    computer.env_file.write_text("OTHER=1\n")
    done = computer.cli("install-service")
    assert done.returncode == 2
    assert "Run `orchestrator worker start` there once" in done.stderr
    assert not (computer.home / "config").exists()
    assert computer.recorded() == []


def test_a_failing_systemctl_is_one_sentence(computer: Computer) -> None:
    """systemctl exiting non-zero (no user session): exit 1 with the step that failed."""
    (computer.home / "bin" / "systemctl").write_text("#!/bin/sh\nexit 1\n")
    done = computer.cli("install-service")
    assert done.returncode == 1
    assert "`systemctl --user daemon-reload` failed (exit 1)" in done.stderr
    assert "Traceback" not in done.stderr


def test_launchd_agent_runs_worker_start_with_the_env_file(
    computer: Computer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On macOS: a plist with the same command and no token, loaded with launchctl."""
    for key, value in computer.env.items():
        monkeypatch.setenv(key, value)
    lines: list[str] = []
    path = service.install(service.Manager.launchd, computer.env_file, lines.append)
    agent = plistlib.loads(path.read_bytes())
    assert agent["Label"] == service.LAUNCHD_LABEL
    assert agent["ProgramArguments"][-3:] == ["start", "--env-file", str(computer.env_file)]
    assert TOKEN not in path.read_text()
    assert computer.recorded() == [["launchctl", "load", "-w", str(path)]]
    service.uninstall(service.Manager.launchd, lines.append)
    assert not path.exists()
    assert computer.recorded()[-1] == ["launchctl", "unload", "-w", str(path)]

"""Run the machine process as a service of the signed-in user, like GitHub's runner ``svc.sh``.

Linux: a systemd user unit; macOS: a launchd agent. The service runs
``orchestrator worker start --env-file <.env>``, so the token stays in that
0600 file and never appears in the unit, the plist or a process listing.
"""

from __future__ import annotations

import enum
import os
import plistlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from orchestrator.domain.errors import CommandFailed, InvalidInput
from orchestrator.entrypoints import envfile

SYSTEMD_UNIT = "orchestrator-machine.service"
LAUNCHD_LABEL = "dev.opencode-orchestrator.machine"

Report = Callable[[str], None]


class Manager(enum.StrEnum):
    systemd = "systemd"
    launchd = "launchd"


def this_platform() -> Manager:
    """systemd on Linux, launchd on macOS; anything else is one clear sentence."""
    if sys.platform.startswith("linux"):
        return Manager.systemd
    if sys.platform == "darwin":
        return Manager.launchd
    raise InvalidInput("install-service supports Linux (systemd) and macOS (launchd) only.")


@attrs.frozen
class Service:
    """What the service runs: this Python's orchestrator with the machine's .env."""

    env_file: Path
    python: Path = attrs.field(factory=lambda: Path(sys.executable))
    path: str = attrs.field(factory=lambda: os.environ.get("PATH", "/usr/bin:/bin"))

    @property
    def command(self) -> list[str]:
        python, env_file = str(self.python), str(self.env_file)
        return [python, "-m", "orchestrator", "worker", "start", "--env-file", env_file]

    @property
    def directory(self) -> Path:
        return self.env_file.parent


def systemd_unit_path() -> Path:
    """``$XDG_CONFIG_HOME/systemd/user/orchestrator-machine.service``."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "systemd" / "user" / SYSTEMD_UNIT


def launchd_plist_path() -> Path:
    """``~/Library/LaunchAgents/<label>.plist``."""
    return Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"


def _systemd_word(word: str) -> str:
    # Unit files expand % specifiers and split on spaces: escape and quote where needed.
    word = word.replace("%", "%%")
    if any(c.isspace() or c in "\"'\\;" for c in word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def systemd_unit(service: Service) -> str:
    """The text of the systemd user unit."""
    exec_start = " ".join(_systemd_word(word) for word in service.command)
    return "\n".join(
        [
            "[Unit]",
            "Description=OpenCode Orchestrator machine process",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            # A path setting: the whole value is the path (no quotes), only % is special.
            f"WorkingDirectory={str(service.directory).replace('%', '%%')}",
            f"ExecStart={exec_start}",
            f"Environment={_systemd_word(f'PATH={service.path}')}",
            "Environment=PYTHONUNBUFFERED=1",
            "Restart=on-failure",
            "RestartSec=5",
            "TimeoutStopSec=30",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def launchd_plist(service: Service) -> bytes:
    """The launchd agent's property list."""
    log = Path.home() / "Library" / "Logs" / "orchestrator-machine.log"
    return plistlib.dumps(
        {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": service.command,
            "WorkingDirectory": str(service.directory),
            "EnvironmentVariables": {"PATH": service.path, "PYTHONUNBUFFERED": "1"},
            "RunAtLoad": True,
            "KeepAlive": {"SuccessfulExit": False},
            "StandardOutPath": str(log),
            "StandardErrorPath": str(log),
        }
    )


def _run(args: Sequence[str], *, check: bool = True) -> int:
    try:
        done = subprocess.run(list(args), check=False)  # noqa: S603 -- fixed commands
    except FileNotFoundError as exc:
        raise CommandFailed(f"{args[0]} is not installed on this computer.") from exc
    if check and done.returncode != 0:
        raise CommandFailed(
            f"`{' '.join(args)}` failed (exit {done.returncode}); the service is not running."
        )
    return done.returncode


def install(manager: Manager, env_file: Path, report: Report) -> Path:
    """Write the unit or agent for ``env_file``'s machine, enable and start it."""
    env_file = env_file.absolute()
    if not envfile.is_machine_env(env_file):
        raise InvalidInput(
            f"No machine set up in {env_file}. Run `orchestrator worker start` there once "
            "first (it saves the token and root), then install the service."
        )
    service = Service(env_file)
    if manager is Manager.systemd:
        path = systemd_unit_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(systemd_unit(service))
        _run(["systemctl", "--user", "daemon-reload"])
        _run(["systemctl", "--user", "enable", "--now", SYSTEMD_UNIT])
        report(f"Installed and started {SYSTEMD_UNIT} ({path}).")
        report(
            "To keep it running while you are logged out: "
            f"loginctl enable-linger {os.environ.get('USER', '$USER')}"
        )
    else:
        path = launchd_plist_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(launchd_plist(service))
        _run(["launchctl", "load", "-w", str(path)])
        report(f"Installed and started {LAUNCHD_LABEL} ({path}).")
    report(f"The token stays in {env_file} (readable only by you).")
    return path


def status(manager: Manager) -> int:
    """Show the service manager's status of the machine service; its exit code."""
    if manager is Manager.systemd:
        return _run(["systemctl", "--user", "status", "--no-pager", SYSTEMD_UNIT], check=False)
    return _run(["launchctl", "list", LAUNCHD_LABEL], check=False)


def uninstall(manager: Manager, report: Report) -> None:
    """Stop and disable the service and remove its file."""
    if manager is Manager.systemd:
        path = systemd_unit_path()
        if not path.exists():
            raise InvalidInput(f"No service installed ({path} does not exist).")
        _run(["systemctl", "--user", "disable", "--now", SYSTEMD_UNIT])
        path.unlink()
        _run(["systemctl", "--user", "daemon-reload"])
    else:
        path = launchd_plist_path()
        if not path.exists():
            raise InvalidInput(f"No service installed ({path} does not exist).")
        _run(["launchctl", "unload", "-w", str(path)])
        path.unlink()
    report(f"Stopped and removed the machine service ({path}).")

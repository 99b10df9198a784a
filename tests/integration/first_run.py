"""A fresh checkout run the README's way, with Debian's own Python and a clean environment."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.harness import live_pids, text_process

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = Path("/usr/bin/python3")
#: Environment variables a fresh login would not have (another Python, our test settings).
DROPPED = ("VIRTUAL_ENV", "PYENV", "PYTHONPATH", "ORCHESTRATOR_", "MACHINE_TOKEN", "NOX")


def fresh_checkout(dest: Path) -> Path:
    """The repository's files as a clone would have them (no .venv, .nox or node_modules)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def share_opencode_modules(checkout: Path) -> None:
    """Hard-link this checkout's installed opencode into ``checkout`` (npm is not under test)."""
    modules = REPO / "tools" / "opencode" / "node_modules"
    if modules.is_dir():
        shutil.copytree(
            modules, checkout / "tools" / "opencode" / "node_modules", copy_function=os.link
        )


def debian_environment(home: Path) -> dict[str, str]:
    """A login's environment: Debian's python3 first (no pyenv), an empty HOME."""
    home.mkdir(parents=True, exist_ok=True)
    # Neither pyenv nor a virtual environment (nox runs this test inside one, whose
    # python3 is pyenv's) may come first: a fresh login has Debian's python3.
    path = [
        p
        for p in os.environ["PATH"].split(os.pathsep)
        if ".pyenv" not in p and not (Path(p).parent / "pyvenv.cfg").exists()
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(DROPPED) and not k.startswith(("XDG_", "COV_", "COVERAGE_"))
    }
    env.update(PATH=os.pathsep.join(path), HOME=str(home), PYTHONUNBUFFERED="1")
    # A download cache is not configuration: reuse it so the test does not fetch every wheel.
    cache = Path.home() / ".cache" / "pip"
    if cache.is_dir():
        env["PIP_CACHE_DIR"] = str(cache)
    return env


def start_serve(checkout: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``./run serve ARGS`` in its own process group, output merged for reading."""
    return text_process(["./run", "serve", *args], env, checkout, own_group=True)


def stop(process: subprocess.Popen[str], grace: float = 30) -> int:
    """Stop the whole group (SIGTERM, then SIGKILL after ``grace``); the leader's status."""
    _signal_group(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _signal_group(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while group_members(process.pid):
        assert time.monotonic() < deadline, f"group {process.pid} outlived SIGKILL"
        time.sleep(0.1)
    return process.wait(timeout=10)


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
        os.killpg(pgid, signum)


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""

    def in_group(entry: Path) -> bool:
        _state, _parent, group = (entry / "stat").read_text().rsplit(") ", 1)[1].split()[:3]
        return int(group) == pgid

    return live_pids(in_group)

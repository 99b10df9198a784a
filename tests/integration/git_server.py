"""Real git repositories served on loopback for clone tests: ``git daemon`` and a silent port."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.harness import free_port, live_pids, stop

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return done.stdout


def make_repository(base: Path, name: str = "app.git", files: int = 300) -> Path:
    """A bare repository ``base/name`` with one commit of ``files`` files of varied content."""
    work = base / f".{name}.work"
    work.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=work)
    for n in range(files):
        folder = work / f"pkg{n % 10}"
        folder.mkdir(exist_ok=True)
        # Distinct, barely compressible content: many objects and a pack worth indexing.
        (folder / f"module{n}.py").write_bytes(os.urandom(2048).hex().encode())
    (work / "README.md").write_text("# app\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    bare = base / name
    git("clone", "-q", "--bare", str(work), str(bare))
    return bare


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"git daemon exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("git daemon did not start listening")


@contextmanager
def git_daemon(base: Path) -> Iterator[str]:
    """``git daemon`` exporting every repository under ``base``; yields its ``git://`` URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            "git",
            "daemon",
            "--export-all",
            f"--base-path={base}",
            "--reuseaddr",
            "--listen=127.0.0.1",
            f"--port={port}",
            "--informative-errors",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=GIT_ENV,
    )
    try:
        _wait_for_port(port, process)
        yield f"git://127.0.0.1:{port}"
    finally:
        stop(process, timeout=10)


@contextmanager
def served_repository(base: Path, files: int = 300) -> Iterator[str]:
    """``base/app.git`` with ``files`` files, behind git daemon; the daemon's ``git://`` URL."""
    make_repository(base, files=files)
    with git_daemon(base) as url:
        yield url


@contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a clone from it hangs."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"git://127.0.0.1:{server.getsockname()[1]}"


def git_processes_for(marker: str) -> list[int]:
    """PIDs of live git processes whose command line mentions ``marker``."""

    def keep(entry: Path) -> bool:
        cmdline = (entry / "cmdline").read_bytes()
        return b"git" in cmdline and marker.encode() in cmdline

    return live_pids(keep)

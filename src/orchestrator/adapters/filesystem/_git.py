"""``git clone`` confined to the root: real git, no shell, no prompts, nothing left on failure.

git runs from an argument list in its own process group, with ``--`` before
the URL, only the https/http/ssh/git protocols allowed (``file`` and ``ext``
never), terminal and GUI prompts off and ssh in batch mode, so a clone that
needs credentials fails at once instead of waiting for someone to type.

git writes into a hidden staging folder next to the target (``.<name>.cloning``)
that is renamed onto the target only once the clone succeeded, so the target
is never half-made. On failure, timeout or cancellation the whole process
group is stopped and the staging folder removed; git also dies with the
machine process (even by SIGKILL), and a staging folder such a death leaves
behind is removed by the next clone into the same folder, and by
:func:`remove_stale_staging` when the machine process starts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import signal
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

import anyio
import anyio.abc
import attrs

from orchestrator.adapters.filesystem._paths import Root, label, os_failure
from orchestrator.adapters.filesystem._progress import GitProgress
from orchestrator.adapters.system import child_environment, launch_command
from orchestrator.domain.commands import (
    CLONE_TARGET_REQUIRED,
    CommandResult,
    validate_new_folder,
)
from orchestrator.domain.errors import CommandFailed, Conflict, NotFound
from orchestrator.domain.git_url import validate_git_url
from orchestrator.domain.workspace import ProgressCallback

GIT_MISSING = "git is not installed on this machine. Install git and try again."
#: Protocols git may use, for the URL and anything it redirects to.
_PROTOCOLS = ("https", "http", "ssh", "git")
#: Seconds git gets to clean up after SIGTERM before the group is killed.
TERMINATE_GRACE = 5.0
#: How many folders deep under the root the start-up sweep looks for staging folders.
SWEEP_DEPTH = 8
#: How many folders the start-up sweep reads at most, so a huge root stays a quick start.
SWEEP_LIMIT = 20_000
#: Folders the sweep never enters: a clone never stages inside them.
_NOT_SWEPT = frozenset({".git", "node_modules"})


def git_arguments(git: str, url: str, target: Path) -> list[str]:
    """The argument list of the clone; the URL can never be read as an option."""
    config = ["protocol.allow=never", "protocol.file.allow=never", "protocol.ext.allow=never"]
    config += [f"protocol.{name}.allow=always" for name in _PROTOCOLS]
    options = [arg for item in config for arg in ("-c", item)]
    return [git, *options, "clone", "--progress", "--", url, str(target)]


def git_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of git: what children may see of ``base``, every way of prompting off."""
    env = child_environment(base)
    never_asks = shutil.which("true") or "/bin/true"
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS=never_asks,
        SSH_ASKPASS=never_asks,
        SSH_ASKPASS_REQUIRE="never",
        GCM_INTERACTIVE="never",
        LC_ALL="C",  # progress lines in English, as the parser expects
    )
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


@attrs.frozen
class Target:
    """Where the clone goes; git writes into ``staging`` next to it, renamed on success."""

    clean: str
    path: Path

    @property
    def staging(self) -> Path:
        name = self.path.name
        if len(name.encode()) > 200:  # keep the staging name within the 255-byte limit
            name = hashlib.sha256(name.encode()).hexdigest()[:16]
        return self.path.with_name(f".{name}.cloning")


def _occupied(clean: str) -> Conflict:
    return Conflict(
        f"The folder {label(clean)} already exists and is not empty;"
        " clone into a new or empty folder."
    )


def prepare_target(root: Root, path: str) -> Target:
    """Check the clone's folder: inside the root, its parent present, itself new or empty."""
    place = root.resolve(validate_new_folder(path, CLONE_TARGET_REQUIRED))
    parent_clean = os.path.dirname(place.clean)
    parent = root.resolve(parent_clean)
    if not os.path.isdir(parent.real):
        raise NotFound(f"The folder {label(parent_clean)} does not exist; create it first.")
    target = Target(place.clean, parent.real / os.path.basename(place.clean))
    if not os.path.lexists(target.path):
        return target
    if os.path.islink(target.path) or not os.path.isdir(target.path):
        raise Conflict(
            f"{label(place.clean, start=True)} already exists and is not a folder;"
            " clone into a new or empty folder."
        )
    try:
        with os.scandir(target.path) as entries:
            occupied = any(True for _ in entries)
    except OSError as exc:
        raise os_failure("read", place.clean, exc) from exc
    if occupied:
        raise _occupied(place.clean)
    return target


def remove_staging(target: Target) -> None:
    """Remove what a clone into ``target`` wrote, if anything (the target itself is untouched)."""
    staging = target.staging
    if os.path.islink(staging):
        os.unlink(staging)
    elif os.path.lexists(staging):
        shutil.rmtree(staging, ignore_errors=True)


def _is_staging_name(name: str) -> bool:
    return len(name) > len("..cloning") and name.startswith(".") and name.endswith(".cloning")


def _is_stale_staging(path: str) -> bool:
    """A clone's leftover: empty, or holding the ``.git`` folder git makes first."""
    try:
        with os.scandir(path) as entries:
            names = [entry.name for entry in entries]
        if not names:
            return True
        return ".git" in names and stat.S_ISDIR(os.lstat(os.path.join(path, ".git")).st_mode)
    except OSError:
        return False


def remove_stale_staging(root: Root) -> int:
    """Remove the staging folders killed clones left under ``root``; how many were removed.

    The walk reads real folders only (a symlink is never followed, so it never
    leaves the root), goes at most ``SWEEP_DEPTH`` deep and ``SWEEP_LIMIT``
    folders wide, and skips ``.git`` and ``node_modules``. Only a folder named
    like a staging folder (``.<name>.cloning``) that is empty or holds a
    ``.git`` folder is removed; a user's folder with any other content stays.
    Call it before any clone starts: a live clone's staging folder looks the same.
    """
    removed = 0
    pending: list[tuple[str, int]] = [(str(root.path), 0)]
    visited = 0
    while pending and visited < SWEEP_LIMIT:
        folder, depth = pending.pop()
        visited += 1
        try:
            with os.scandir(folder) as entries:
                children = [e for e in entries if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for child in children:
            if _is_staging_name(child.name):
                if _is_stale_staging(child.path):
                    shutil.rmtree(child.path, ignore_errors=True)
                    removed += not os.path.lexists(child.path)
            elif child.name not in _NOT_SWEPT and depth + 1 < SWEEP_DEPTH:
                pending.append((child.path, depth + 1))
    return removed


def publish(target: Target) -> None:
    """Move the finished clone into place; an empty folder there is replaced, atomically."""
    try:
        os.rename(target.staging, target.path)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise _occupied(target.clean) from exc
        raise os_failure("create", target.clean, exc) from exc


async def _stop_group(process: anyio.abc.Process) -> None:
    """SIGTERM the clone's process group (git removes its junk), then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGTERM)
            with anyio.move_on_after(TERMINATE_GRACE):
                await process.wait()
        os.killpg(process.pid, signal.SIGKILL)  # helpers (ssh, index-pack) left in the group
    await process.wait()


async def _run(
    args: list[str], cwd: Path, env: dict[str, str], progress: ProgressCallback
) -> tuple[int, GitProgress]:
    parser = GitProgress()
    try:
        process = await anyio.open_process(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,  # its own group, to stop git with its helpers
        )
    except FileNotFoundError as exc:
        raise CommandFailed(GIT_MISSING) from exc
    try:
        assert process.stderr is not None
        async for data in process.stderr:
            for percent, line in parser.feed(data):
                await progress(percent, line)
        for percent, line in parser.finish():
            await progress(percent, line)
        status = await process.wait()
    finally:
        with anyio.CancelScope(shield=True):
            await _stop_group(process)
            await process.aclose()
    return status, parser


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{round(seconds / 60)} minutes"


async def clone(
    root: Root,
    url: str,
    path: str,
    progress: ProgressCallback,
    time_limit: float,
    cloning: set[Path],
) -> CommandResult:
    """Clone ``url`` into ``path`` under ``root`` within ``time_limit`` seconds.

    ``cloning`` holds the targets of the clones running now: one per folder at a time.
    """
    url = validate_git_url(url)
    git = shutil.which("git")
    if git is None:
        raise CommandFailed(GIT_MISSING)
    target = await anyio.to_thread.run_sync(prepare_target, root, path)
    if target.path in cloning:
        raise Conflict(f"A clone into {label(target.clean)} is already running.")
    cloning.add(target.path)
    try:
        # Left over by a clone killed with its machine process, if any.
        await anyio.to_thread.run_sync(remove_staging, target)
        args = launch_command(git_arguments(git, url, target.staging))
        try:
            with anyio.fail_after(time_limit):
                status, parser = await _run(args, target.path.parent, git_environment(), progress)
        except TimeoutError as exc:
            raise CommandFailed(
                f"The clone did not finish within {_duration(time_limit)}."
            ) from exc
        if status != 0:
            raise CommandFailed(parser.failure(status))
        await anyio.to_thread.run_sync(publish, target)
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(remove_staging, target)
        cloning.discard(target.path)
    return CommandResult(target.clean)

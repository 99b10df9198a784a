"""A workspace in memory: the ``Workspace`` port without a disk or git.

Folders are a set of paths; a clone walks through scripted progress steps and
can be held at a gate the test opens. Every call is recorded, and so are the
clones that were cancelled and how many operations ran at once.
"""

from __future__ import annotations

import posixpath

import anyio
import anyio.lowlevel
import attrs

from orchestrator.domain.commands import (
    CLONE_TARGET_REQUIRED,
    CommandResult,
    DirEntry,
    EntryKind,
    validate_new_folder,
    validate_path,
)
from orchestrator.domain.errors import Conflict, NotFound, OrchestratorError
from orchestrator.domain.git_url import validate_git_url
from orchestrator.domain.workspace import ProgressCallback

CLONE_STEPS = (
    (10, "Receiving objects:   0% (0/10)"),
    (45, "Receiving objects:  50% (5/10)"),
    (80, "Resolving deltas: 100% (3/3), done."),
)


@attrs.define
class FakeWorkspace:
    """Folders in a set (``""`` is the root); clones follow ``clone_steps``."""

    folders: set[str] = attrs.Factory(lambda: {""})
    clone_steps: tuple[tuple[int, str], ...] = CLONE_STEPS
    #: When set, each clone waits here after its progress steps until the test sets it.
    gate: anyio.Event | None = None
    #: Raised by the next operation instead of doing it.
    fail_with: OrchestratorError | None = None
    calls: list[tuple[str, ...]] = attrs.Factory(list)
    cancelled: list[str] = attrs.Factory(list)
    running: int = 0
    most_at_once: int = 0
    #: Leftovers of killed clones the next start-up sweep removes; ``sweeps`` counts sweeps.
    stale_clones: int = 0
    sweeps: int = 0

    def _start(self, *call: str) -> None:
        self.calls.append(call)
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error

    async def _busy(self) -> None:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await anyio.lowlevel.checkpoint()

    async def list_dir(self, path: str, cursor: str | None = None) -> CommandResult:
        """The folders directly under ``path``, sorted by name."""
        self._start("list_dir", path, cursor or "")
        clean = validate_path(path)
        if clean not in self.folders:
            raise NotFound(f"There is no folder '{clean}' under the root.")
        children = sorted(
            posixpath.basename(f) for f in self.folders if f and posixpath.dirname(f) == clean
        )
        entries = tuple(DirEntry(name, EntryKind.DIR) for name in children)
        return CommandResult(clean, entries, len(entries))

    async def make_dir(self, path: str, parents: bool = False) -> CommandResult:
        """Add ``path`` (and its parents when ``parents``)."""
        self._start("make_dir", path, str(parents))
        clean = validate_new_folder(path)
        if clean in self.folders and not parents:
            raise Conflict(f"A folder named '{clean}' already exists.")
        parent = posixpath.dirname(clean)
        if parent not in self.folders and not parents:
            raise NotFound(f"The folder '{parent}' does not exist; create it first.")
        while clean:
            self.folders.add(clean)
            clean = posixpath.dirname(clean)
        return CommandResult(validate_path(path))

    async def git_clone(self, url: str, path: str, progress: ProgressCallback) -> CommandResult:
        """Walk through the progress steps, wait at the gate, then add the folder."""
        self._start("git_clone", url, path)
        validate_git_url(url)
        clean = validate_new_folder(path, CLONE_TARGET_REQUIRED)
        await self._busy()
        try:
            for percent, line in self.clone_steps:
                await progress(percent, line)
            if self.gate is not None:
                await self.gate.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled.append(clean)
            raise
        finally:
            self.running -= 1
        self.folders.add(clean)
        return CommandResult(clean)

    async def remove_stale_clones(self) -> int:
        """Count the sweep and report ``stale_clones`` as removed."""
        self.sweeps += 1
        removed, self.stale_clones = self.stale_clones, 0
        return removed

"""The :class:`~orchestrator.domain.workspace.Workspace` port on the machine's real disk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio

from orchestrator.adapters.filesystem import _folders, _git
from orchestrator.adapters.filesystem._paths import Root
from orchestrator.domain.commands import CommandResult
from orchestrator.domain.workspace import ProgressCallback

DEFAULT_CLONE_TIMEOUT = timedelta(minutes=30)


class LocalWorkspace:
    """The folders under ``root``; nothing outside it can be listed, created or cloned into."""

    def __init__(self, root: Path, *, clone_timeout: timedelta = DEFAULT_CLONE_TIMEOUT) -> None:
        self.root = Root(root)
        self.clone_timeout = clone_timeout
        self._cloning: set[Path] = set()

    async def list_dir(self, path: str, cursor: str | None = None) -> CommandResult:
        """One page of the folder at ``path``: folders first, then by name; git repos marked."""
        return await anyio.to_thread.run_sync(_folders.list_dir, self.root, path, cursor)

    async def make_dir(self, path: str, parents: bool = False) -> CommandResult:
        """Create the folder at ``path`` (and missing parents if ``parents``)."""
        return await anyio.to_thread.run_sync(_folders.make_dir, self.root, path, parents)

    async def git_clone(self, url: str, path: str, progress: ProgressCallback) -> CommandResult:
        """Clone ``url`` into ``path`` (new or empty), reporting progress as it goes."""
        timeout = self.clone_timeout.total_seconds()
        return await _git.clone(self.root, url, path, progress, timeout, self._cloning)

    async def remove_stale_clones(self) -> int:
        """Remove the staging folders of clones killed with an earlier machine process."""
        return await anyio.to_thread.run_sync(_git.remove_stale_staging, self.root)

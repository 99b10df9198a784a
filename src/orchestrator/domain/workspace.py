"""The machine's files as directory commands see them: one root folder, nothing outside it.

Every path is relative to the root (``""`` is the root itself). An
implementation resolves each path on disk and refuses any that leaves the
root, through ``..`` or a symbolic link, with
:class:`~orchestrator.domain.errors.PathOutsideRoot`; a missing folder is
:class:`~orchestrator.domain.errors.NotFound`, an occupied target
:class:`~orchestrator.domain.errors.Conflict`, and a failure on the machine
(git, the disk, a timeout) :class:`~orchestrator.domain.errors.CommandFailed`.
Cancelling the calling task stops the operation and undoes a half-made clone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from orchestrator.domain.commands import CommandResult

#: Called with a percentage (0-100) and the line it was read from, as an operation advances.
ProgressCallback = Callable[[int, str], Awaitable[None]]


class Workspace(Protocol):
    """The folders under one machine's root directory."""

    async def list_dir(self, path: str, cursor: str | None = None) -> CommandResult:
        """One page of the folder at ``path``: folders first, then by name; git repos marked."""
        ...

    async def make_dir(self, path: str, parents: bool = False) -> CommandResult:
        """Create the folder at ``path`` (and missing parents if ``parents``)."""
        ...

    async def git_clone(self, url: str, path: str, progress: ProgressCallback) -> CommandResult:
        """Clone ``url`` into ``path`` (new or empty), reporting progress as it goes."""
        ...

    async def remove_stale_clones(self) -> int:
        """Remove what clones killed with an earlier machine process left; how many."""
        ...

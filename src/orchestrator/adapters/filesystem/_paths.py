"""Confinement: every path is resolved against the root, symlinks included, and checked.

The lexical half (``..``, absolute paths, NUL bytes, long names) is the
domain's :func:`~orchestrator.domain.commands.validate_path`; here the path is
resolved on disk, following every symbolic link that exists, and refused if
the result is not under the resolved root.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import attrs

from orchestrator.domain.commands import validate_path
from orchestrator.domain.errors import CommandFailed, InvalidInput, PathOutsideRoot

SYMLINK_ESCAPE = "The path leads outside the machine's root directory through a symbolic link."
SYMLINK_LOOP = "The path goes round in a loop of symbolic links."


def label(clean: str, *, start: bool = False) -> str:
    """How a message names a path relative to the root (``start``: at a sentence's start)."""
    if clean:
        return f"'{clean}'"
    return "The root folder" if start else "the root folder"


def os_failure(action: str, clean: str, exc: OSError) -> CommandFailed:
    """One sentence for an operating-system error while doing ``action`` on ``clean``."""
    if isinstance(exc, PermissionError):
        return CommandFailed(f"The machine may not {action} {label(clean)} (permission denied).")
    reason = exc.strerror or type(exc).__name__
    return CommandFailed(f"Could not {action} {label(clean)}: {reason}.")


@attrs.frozen
class Resolved:
    """A path under the root: as the user wrote it (normalized) and where it really is."""

    clean: str
    #: The root joined with ``clean``, symlinks not followed (what ``lstat`` should look at).
    lexical: Path
    #: Every existing symlink followed; always under the root.
    real: Path


def _resolved(path: str | Path) -> Path:
    return Path(path).resolve(strict=True)


@attrs.frozen
class Root:
    """The machine's root directory, resolved once."""

    path: Path = attrs.field(converter=_resolved)

    def resolve(self, relative: str) -> Resolved:
        """``relative`` checked lexically, then on disk; refuses anything outside the root."""
        clean = validate_path(relative)
        lexical = self.path / clean if clean else self.path
        try:
            real = Path(os.path.realpath(lexical, strict=False))
        except (RuntimeError, OSError) as exc:  # a loop, on some Python versions
            raise InvalidInput(SYMLINK_LOOP) from exc
        if not real.is_relative_to(self.path):
            raise PathOutsideRoot(SYMLINK_ESCAPE)
        if clean and _loops(lexical):
            raise InvalidInput(SYMLINK_LOOP)
        return Resolved(clean, lexical, real)


def _loops(path: Path) -> bool:
    """Whether resolving ``path`` runs into a symlink loop (``realpath`` then stops early)."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False

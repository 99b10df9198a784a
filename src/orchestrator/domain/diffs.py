"""What a turn changed: the files with their +/- counts and unified diffs.

opencode-ai 1.18.33 keeps a turn's changes on its user message
(``GET /session/{id}/diff?messageID=…``: ``file``, ``patch``, ``additions``,
``deletions``, ``status``); the machine reads them when the turn ends and stores
them as the reply's :class:`TurnDiffPart`. The patches of one turn share a budget
of :data:`MAX_DIFF_BYTES`, so a huge diff is stored truncated with its full size,
and a binary file keeps its name and counts but no patch.
"""

from __future__ import annotations

import re
from typing import ClassVar

import attrs

#: UTF-8 bytes of patch text kept per turn, over all its files (a Convex document
#: holds the part's JSON, where an escaped byte may take six characters).
MAX_DIFF_BYTES = 60_000
#: Files kept per turn; the count of the others is recorded.
MAX_DIFF_FILES = 500

#: The part ID a reply keeps the files its turn changed under.
TURN_DIFF_PART = "turn-diff"

#: git's and opencode's ways of saying a patch is of a binary file.
BINARY_PATCH = re.compile(r"^(Binary files .* differ|GIT binary patch)$", re.MULTILINE)


@attrs.frozen
class FileDiff:
    """One changed file: its path, how it changed, and its unified diff."""

    file: str
    #: ``added``, ``deleted`` or ``modified``.
    status: str = "modified"
    additions: int = 0
    deletions: int = 0
    #: The unified diff, at most what the turn's budget left for it.
    patch: str = ""
    #: UTF-8 bytes of the whole patch, however much of it is kept.
    patch_size: int = 0
    #: A binary file: no patch is kept.
    binary: bool = False

    @property
    def truncated(self) -> bool:
        return self.patch_size > len(self.patch.encode())


@attrs.frozen
class TurnDiffPart:
    """The files one turn changed (not an opencode part: read at the end of the turn)."""

    TYPE: ClassVar[str] = "turn-diff"
    #: The agent's ID of the turn's prompt, which undo reverts to.
    agent_message_id: str = ""
    files: tuple[FileDiff, ...] = ()
    #: Files left out past :data:`MAX_DIFF_FILES`.
    more_files: int = 0

    @property
    def additions(self) -> int:
        return sum(f.additions for f in self.files)

    @property
    def deletions(self) -> int:
        return sum(f.deletions for f in self.files)


def is_binary_patch(patch: str) -> bool:
    """Whether ``patch`` is the diff of a binary file (NUL bytes or git's binary marker)."""
    return "\x00" in patch or BINARY_PATCH.search(patch) is not None

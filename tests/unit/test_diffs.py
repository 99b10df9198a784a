"""A turn's changed files: read from opencode's diff, bounded, and kept whole through JSON."""

from __future__ import annotations

from orchestrator.adapters.opencode._parts import turn_diff
from orchestrator.adapters.parts_json import body_from_row, body_to_row
from orchestrator.domain.diffs import (
    MAX_DIFF_BYTES,
    MAX_DIFF_FILES,
    FileDiff,
    TurnDiffPart,
    is_binary_patch,
)
from orchestrator.domain.parts import bound_body

PATCH = "Index: a.txt\n--- a.txt\n+++ a.txt\n@@ -1 +1 @@\n-old\n+new\n"


def test_opencodes_file_diffs_become_a_turn_diff_part() -> None:
    """file, status, counts and patch are read; entries without a file name are skipped."""
    diffs = [
        {"file": "a.txt", "patch": PATCH, "additions": 1, "deletions": 1, "status": "modified"},
        {"patch": PATCH},
        "not an object",
        {"file": "new.txt", "additions": 2.0},
    ]
    part = turn_diff("msg_1", diffs)
    assert part == TurnDiffPart(
        "msg_1",
        (
            FileDiff("a.txt", "modified", 1, 1, PATCH, len(PATCH)),
            FileDiff("new.txt", "modified", 2, 0, "", 0),
        ),
    )
    assert (part.additions, part.deletions) == (3, 1)
    assert turn_diff("msg_1", None) == TurnDiffPart("msg_1")


def test_a_huge_diff_is_kept_truncated_with_its_full_size() -> None:
    """Patches share MAX_DIFF_BYTES in file order; each keeps its whole size."""
    big = "+" + "x" * (5 * 1024 * 1024) + "\n"
    part = bound_body(
        TurnDiffPart("m", (FileDiff("big.txt", patch=big), FileDiff("next.txt", patch=PATCH)))
    )
    assert isinstance(part, TurnDiffPart)
    first, second = part.files
    assert len(first.patch.encode()) == MAX_DIFF_BYTES
    assert first.patch_size == len(big.encode())
    assert first.truncated
    assert (second.patch, second.patch_size, second.truncated) == ("", len(PATCH), True)


def test_a_binary_file_keeps_its_name_and_counts_but_no_patch() -> None:
    """NUL bytes or git's binary marker make a file binary: its patch is dropped."""
    assert is_binary_patch("Binary files a/i.png and b/i.png differ\n")
    assert is_binary_patch("+\x00\x01")
    assert not is_binary_patch(PATCH)
    part = bound_body(TurnDiffPart("m", (FileDiff("i.png", "added", 0, 0, "\x89PNG\x00\x00"),)))
    assert isinstance(part, TurnDiffPart)
    assert part.files[0] == FileDiff("i.png", "added", 0, 0, "", 7, binary=True)


def test_file_names_and_counts_are_bounded() -> None:
    """At most MAX_DIFF_FILES files (the rest counted), negative counts read as 0."""
    many = tuple(FileDiff(f"<b>{i}</b>.txt", additions=-1) for i in range(MAX_DIFF_FILES + 3))
    part = bound_body(TurnDiffPart("m", many))
    assert isinstance(part, TurnDiffPart)
    assert len(part.files) == MAX_DIFF_FILES
    assert part.more_files == 3
    assert part.files[0].file == "<b>0</b>.txt"
    assert part.files[0].additions == 0


def test_a_turn_diff_survives_the_stored_json() -> None:
    """The stored row reads back as the same part."""
    part = TurnDiffPart("m", (FileDiff("<i>a</i>", "added", 2, 0, PATCH, len(PATCH)),))
    type_, text, data = body_to_row(part)
    assert type_ == "turn-diff"
    assert body_from_row(text, data) == part

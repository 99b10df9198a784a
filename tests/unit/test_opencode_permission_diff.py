"""opencode's ``permission.asked`` for an edit carries the file and its bounded diff."""

from __future__ import annotations

from orchestrator.adapters.opencode._runtime import _permission
from orchestrator.domain.agent import AgentSessionId
from orchestrator.domain.diffs import MAX_DIFF_BYTES

DIFF = "Index: /w/a.py\n--- /w/a.py\n+++ /w/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"


def _edit(diff: object) -> dict[str, object]:
    # The shape opencode-ai 1.18.33's edit tool asks with: metadata {filepath, diff}.
    return {
        "id": "per_1",
        "permission": "edit",
        "patterns": ["a.py"],
        "metadata": {"filepath": "/w/a.py", "diff": diff},
    }


def test_an_edit_request_keeps_its_file_and_diff() -> None:
    """The edit's file path and unified diff reach the event whole, with their size."""
    asked = _permission(AgentSessionId("ses"), _edit(DIFF))
    assert (asked.tool, asked.file, asked.diff) == ("edit", "/w/a.py", DIFF)
    assert asked.diff_size == len(DIFF.encode())


def test_an_oversized_diff_is_bounded_with_its_full_size() -> None:
    """A diff past the budget is cut at a UTF-8 boundary; its full size is kept."""
    huge = DIFF + "+é\n" * MAX_DIFF_BYTES
    asked = _permission(AgentSessionId("ses"), _edit(huge))
    assert MAX_DIFF_BYTES - 2 <= len(asked.diff.encode()) <= MAX_DIFF_BYTES
    assert huge.startswith(asked.diff)
    assert asked.diff_size == len(huge.encode())


def test_a_request_without_a_diff_has_none() -> None:
    """A bash request (no diff) or a non-text diff leaves file-less, diff-less fields."""
    bash = _permission(
        AgentSessionId("ses"),
        {"id": "per_2", "permission": "bash", "patterns": ["ls"], "metadata": {"command": "ls"}},
    )
    assert (bash.file, bash.diff, bash.diff_size) == ("", "", 0)
    odd = _permission(AgentSessionId("ses"), _edit(["not", "text"]))
    assert (odd.file, odd.diff, odd.diff_size) == ("/w/a.py", "", 0)

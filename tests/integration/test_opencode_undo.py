"""A turn's changes, undo and redo, against the real ``opencode`` binary and the fake model.

opencode keeps snapshots (and so diffs and revert) only in a git repository; the
worker folder here is one, with a committed file the agent rewrites.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.adapters.opencode import OpencodeRuntime
from orchestrator.domain.diffs import TurnDiffPart
from orchestrator.domain.errors import NotFound
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from orchestrator.testing.fake_model import FakeModelServer
from tests.integration.harness import opencode_runtime
from tests.integration.test_opencode_adapter import MODEL, collect_turn

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

BEFORE = "old line\nsecond\n"
ALLOW_EDITS = PermissionPolicy(edit=PermissionAction.ALLOW)
AFTER = "new line\nsecond\n<b>added</b>\n"


def git_worker(directory: Path) -> Path:
    """A git repository with ``notes.txt`` committed."""
    directory.mkdir()
    (directory / "notes.txt").write_text(BEFORE)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
        subprocess.run([*git, *args], cwd=directory, check=True)
    return directory


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[tuple[OpencodeRuntime, Path]]:
    worker = git_worker(tmp_path / "worker")
    model = FakeModelServer(write_file=(str(worker / "notes.txt"), AFTER), after_tool_reply="Done.")
    sandbox, permission = tmp_path / "sandbox", {"edit": "allow"}
    async with model, opencode_runtime(sandbox, model, permission=permission) as opened:
        yield opened, worker


async def test_a_turns_diff_is_read_then_undone_and_redone(
    runtime: tuple[OpencodeRuntime, Path],
) -> None:
    """The turn's diff names the file with its patch; revert restores it, unrevert rewrites it."""
    opened, worker = runtime
    session = await opened.open_session(worker, permission_policy=ALLOW_EDITS)
    assert await session.turn_diff() is None  # no turn yet
    await session.prompt("rewrite notes.txt", MODEL)
    await collect_turn(session)
    diff = await session.turn_diff()
    assert isinstance(diff, TurnDiffPart)
    [changed] = diff.files
    assert (changed.file, changed.status) == ("notes.txt", "modified")
    assert (changed.additions, changed.deletions) == (2, 1)
    assert "-old line\n+new line\n" in changed.patch
    assert "+<b>added</b>" in changed.patch
    assert (worker / "notes.txt").read_text() == AFTER

    await session.revert(diff.agent_message_id)
    assert (worker / "notes.txt").read_text() == BEFORE
    await session.unrevert()
    assert (worker / "notes.txt").read_text() == AFTER


async def test_reverting_an_unknown_turn_is_not_found_and_changes_nothing(
    runtime: tuple[OpencodeRuntime, Path],
) -> None:
    """opencode itself ignores an unknown message; the adapter refuses it with NotFound."""
    opened, worker = runtime
    session = await opened.open_session(worker, permission_policy=ALLOW_EDITS)
    await session.prompt("rewrite notes.txt", MODEL)
    await collect_turn(session)
    with pytest.raises(NotFound):
        await session.revert("msg_unknown")
    assert (worker / "notes.txt").read_text() == AFTER

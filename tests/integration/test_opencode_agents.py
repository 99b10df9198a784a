"""Agents (modes) and slash commands through the real ``opencode`` binary and the fake model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.adapters.opencode import OpencodeRuntime
from orchestrator.domain.agent import TurnFailed, TurnFinished
from orchestrator.testing.fake_model import FakeModelServer
from tests.integration.harness import opencode_runtime
from tests.integration.test_opencode_adapter import MODEL, collect_turn

pytestmark = pytest.mark.anyio

HELLO = "---\ndescription: Greet someone\n---\nSay a warm hello to $ARGUMENTS, please.\n"


@pytest.fixture
def worker_directory(tmp_path: Path) -> Path:
    """A worker folder with a project command, ``.opencode/command/hello.md``."""
    directory = tmp_path / "worker"
    (directory / ".opencode" / "command").mkdir(parents=True)
    (directory / ".opencode" / "command" / "hello.md").write_text(HELLO)
    return directory


@pytest.fixture
async def runtime(tmp_path: Path, fake_model: FakeModelServer) -> AsyncIterator[OpencodeRuntime]:
    """opencode that reads the worker folder's own commands: they are the point here."""
    async with opencode_runtime(tmp_path / "sandbox", fake_model, project_config=True) as started:
        yield started


def _last_user_text(fake_model: FakeModelServer) -> str:
    [*_, last] = [r for r in fake_model.chat_requests if not r.is_title]
    return json.dumps(last.messages[-1])


async def test_agents_commands_and_a_plan_turn(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """opencode lists build/plan and the folder's command; plan and /hello reach the model."""
    catalog = await runtime.list_agents(worker_directory)
    assert catalog.agents == ("build", "plan")  # primary, not hidden: no subagents, no title
    assert "hello" in catalog.commands
    session = await runtime.open_session(worker_directory)
    try:
        await session.prompt("Look around first.", MODEL, agent="plan")
        assert isinstance((await collect_turn(session))[-1], TurnFinished)
        assert "Plan mode ACTIVE" in _last_user_text(fake_model)
        await session.command("hello", "Ada", MODEL)
        assert isinstance((await collect_turn(session))[-1], TurnFinished)
        sent = _last_user_text(fake_model)
        assert "Say a warm hello to Ada, please." in sent
        assert "Plan mode ACTIVE" not in sent
        await session.command("no-such-command", "", MODEL)
        [*_, last] = await collect_turn(session)
        assert isinstance(last, TurnFailed)
    finally:
        await session.close()

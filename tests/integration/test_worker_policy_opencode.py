"""A worker's permission policy on the real opencode: it overrides the user's own config files."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.adapters.opencode import OpencodeRuntime, open_opencode_runtime
from orchestrator.domain.agent import PermissionAsked, TurnFinished
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionAction,
    PermissionPolicy,
)
from orchestrator.testing.fake_model import FakeModelServer, opencode_environment
from tests.integration.harness import opencode_or_skip
from tests.integration.test_opencode_adapter import MODEL, collect_turn, next_event

pytestmark = [pytest.mark.slow, pytest.mark.anyio]


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModelServer]:
    async with FakeModelServer(reply="Done.", after_tool_reply="Ran it.") as server:
        server.bash_command = "echo ran > proof.txt"
        yield server


@pytest.fixture
async def permissive(tmp_path: Path, fake_model: FakeModelServer) -> AsyncIterator[OpencodeRuntime]:
    """opencode whose user config allows bash and edits, at the top and for its agents."""
    binary = opencode_or_skip()
    allow = {"bash": "allow", "edit": "allow"}
    env = opencode_environment(tmp_path / "sandbox", fake_model.base_url, permission=allow)
    # An agent's own rules win over the top-level ones in opencode: allow there too.
    global_config = Path(env["XDG_CONFIG_HOME"]) / "opencode" / "opencode.json"
    config = json.loads(global_config.read_text())
    config["agent"] = {name: {"permission": allow} for name in ("build", "general")}
    global_config.write_text(json.dumps(config))
    async with open_opencode_runtime(binary=binary, env=env) as runtime:
        yield runtime


def _folder(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "opencode.json").write_text(json.dumps({"permission": {"bash": "allow"}}))
    return folder


async def test_the_default_policy_asks_before_bash_even_if_the_users_config_allows(
    permissive: OpencodeRuntime, tmp_path: Path
) -> None:
    """Global and project configs allow bash; the worker's default policy still asks first."""
    folder = _folder(tmp_path, "worker")
    before = (folder / "opencode.json").read_text()
    session = await permissive.open_session(folder, permission_policy=DEFAULT_PERMISSION_POLICY)
    await session.prompt("Run something", MODEL)
    asked = await next_event(session, PermissionAsked)
    assert asked.tool == "bash"
    assert not (folder / "proof.txt").exists()
    assert (folder / "opencode.json").read_text() == before  # the user's file is untouched
    await session.close()


async def test_an_allowing_policy_runs_bash_without_asking(
    permissive: OpencodeRuntime, tmp_path: Path
) -> None:
    """A worker whose policy allows bash runs the command straight away."""
    folder = _folder(tmp_path, "open")
    policy = PermissionPolicy(bash=PermissionAction.ALLOW)
    session = await permissive.open_session(folder, permission_policy=policy)
    await session.prompt("Run something", MODEL)
    events = await collect_turn(session)
    assert not any(isinstance(e, PermissionAsked) for e in events), events
    assert isinstance(events[-1], TurnFinished)
    assert (folder / "proof.txt").read_text().strip() == "ran"
    await session.close()

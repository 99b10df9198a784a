"""Choosing an agent and recognising a slash command: the pure rules."""

from __future__ import annotations

import pytest

from orchestrator.domain.agent import slash_command
from orchestrator.domain.chat import check_agent
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import MachineId, WorkerId
from orchestrator.domain.model import Worker, WorkerStatus
from orchestrator.testing.fakes import FakeClock


def _worker(agents: tuple[str, ...]) -> Worker:
    when = FakeClock().now()
    return Worker(
        WorkerId("wrk_1"), MachineId("mch_1"), "", WorkerStatus.ONLINE, when, agents=agents
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("/review", ("review", "")),
        ("/review main..HEAD", ("review", "main..HEAD")),
        ("/review   spaced  ", ("review", "spaced")),
        ("/reviewer x", None),
        ("review", None),
        (" /review", None),
        ("/", None),
    ],
)
def test_a_slash_command_is_only_one_the_worker_offers(
    content: str, expected: tuple[str, str] | None
) -> None:
    """``/name args`` for an offered name is a command; anything else stays a prompt."""
    assert slash_command(content, ["review", "init"]) == expected


def test_an_agent_must_be_one_the_worker_offers() -> None:
    """None means the agent's default; an unknown one is one sentence listing the choices."""
    worker = _worker(("build", "plan"))
    assert check_agent(worker, None) is None
    assert check_agent(worker, "plan") == "plan"
    with pytest.raises(
        InvalidInput, match=r"^The worker does not offer agent x\. Pick one of: build, plan\.$"
    ):
        check_agent(worker, "x")
    with pytest.raises(InvalidInput, match=r"Pick one of: none reported yet\.$"):
        check_agent(_worker(()), "plan")

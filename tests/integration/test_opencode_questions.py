"""opencode's question tool through the adapter: asked as an event, answered or rejected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.adapters.opencode import OpencodeRuntime
from orchestrator.domain.agent import QuestionAsked, TurnFailed, TurnFinished
from orchestrator.domain.questions import Question, QuestionOption
from orchestrator.testing.fake_model import FakeModelServer
from tests.integration.test_opencode_adapter import collect_turn, next_event, prompted

#: The opencode runtime, the worker folder and the fake model are conftest.py's fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.anyio]

ASKED = [
    {
        "question": "Which colour should the button be?",
        "header": "Colour",
        "options": [
            {"label": "Red", "description": "Warm"},
            {"label": "Blue", "description": "Calm"},
        ],
    }
]


async def test_a_question_is_asked_and_its_answer_reaches_the_model(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """The question tool raises QuestionAsked; the answer is in the model's next request."""
    fake_model.questions = ASKED
    fake_model.after_tool_reply = "Blue it is."
    session = await prompted(runtime, worker_directory, "Paint the button")
    asked = await next_event(session, QuestionAsked)
    assert asked.request_id.startswith("que")
    assert asked.questions == (
        Question(
            "Which colour should the button be?",
            "Colour",
            (QuestionOption("Red", "Warm"), QuestionOption("Blue", "Calm")),
        ),
    )
    await session.answer_question(asked.request_id, (("Blue",),))
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished)
    last = fake_model.chat_requests[-1]
    assert last.has_tool_result
    assert "Blue" in json.dumps(last.messages[-1])


async def test_a_dismissed_question_tells_the_model_so(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """Rejecting the question ends its tool call without an answer; the turn still ends."""
    fake_model.questions = ASKED
    session = await prompted(runtime, worker_directory, "Paint the button")
    asked = await next_event(session, QuestionAsked)
    await session.answer_question(asked.request_id, None)
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished | TurnFailed)
    assert all("Blue" not in json.dumps(r.messages[-1]) for r in fake_model.chat_requests)

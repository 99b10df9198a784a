"""The machine process relays a question: recorded, answered by the owner, passed on, resolved."""

from __future__ import annotations

import pytest

from orchestrator.domain.questions import QuestionStatus
from orchestrator.testing.agent import AskQuestion, Say
from orchestrator.testing.waiting import eventually
from tests.unit.test_sessions import World, running, scripted, world

__all__ = ["world"]  # the fixture used below

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("answers", "said"), [((("Blue",),), "Blue"), (None, "dismissed")])
async def test_a_question_is_recorded_answered_and_passed_on(
    world: World, answers: tuple[tuple[str, ...], ...] | None, said: str
) -> None:
    """The agent's question waits for the owner; the answer (or dismissal) reaches the agent."""
    runtime = scripted(lambda _: [Say("Let me ask. "), AskQuestion()])
    session = await world.session()
    async with running(world, runtime):
        await world.backend.send_message(world.user, session.chat_session_id, "paint it")
        asked = await eventually(
            lambda: world.backend.list_questions(world.user, session.chat_session_id)
        )
        assert asked[0].questions[0].question == "Which colour?"
        await world.backend.answer_question(world.user, asked[0].question_id, answers)
        reply = await world.reply(session)
    assert reply.content == f"Let me ask. You answered: {said}."
    assert [given for _, given in runtime.question_answers] == [answers]
    [stored] = world.backend.questions.values()
    assert stored.status is QuestionStatus.RESOLVED

"""The backend contract for questions: asked by the agent, answered or dismissed by the owner."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from orchestrator.domain.chat import MessageStatus, PermissionRequest
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import QuestionId, UserId
from orchestrator.domain.ports import Backend
from orchestrator.domain.questions import Question, QuestionOption, QuestionRequest, QuestionStatus
from orchestrator.domain.replies import PermissionAsk, QuestionAsk
from tests.contract.conftest import Chat, ask, claimed, work_now
from tests.contract.test_watch_contract import next_value, watching

pytestmark = pytest.mark.anyio

COLOUR = Question(
    "Which colour should the button be?",
    "Colour",
    (QuestionOption("Red", "Warm"), QuestionOption("Blue", "Calm")),
)
TOPPINGS = Question(
    "Which toppings?",
    "Toppings",
    (QuestionOption("Cheese"), QuestionOption("Olives")),
    multiple=True,
    custom=False,
)


async def test_question_round_trip(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Pending → answered by the owner → resolved by the machine; the answer stays on it."""
    session_id = chat.session.chat_session_id
    reply = await claimed(backend, alice, chat)
    asked = await backend.record_question(
        chat.token, reply.message_id, QuestionAsk("que_1", [COLOUR, TOPPINGS])
    )
    assert (asked.status, asked.answers, asked.dismissed, asked.message_id) == (
        QuestionStatus.PENDING,
        None,
        False,
        reply.message_id,
    )
    assert (asked.agent_request_id, asked.questions, asked.chat_session_id) == (
        "que_1",
        (COLOUR, TOPPINGS),
        session_id,
    )
    assert await backend.list_questions(alice, session_id) == [asked]
    with pytest.raises(Conflict, match=r"^This question has no answer to pass on\.$"):
        await backend.resolve_question(chat.token, asked.question_id)
    answers = (("My own green",), ("Cheese", "Olives"))
    answered = await backend.answer_question(alice, asked.question_id, answers)
    assert (answered.status, answered.answers, answered.dismissed) == (
        QuestionStatus.ANSWERED,
        answers,
        False,
    )
    assert await backend.list_questions(alice, session_id) == []
    assert await backend.list_questions(alice, session_id, include_answered=True) == [answered]
    [work] = await work_now(backend, chat.token)
    assert work.answered_questions == (answered,)
    with pytest.raises(Conflict, match=r"^This question is no longer waiting for an answer\.$"):
        await backend.answer_question(alice, asked.question_id, (("Red",), ("Cheese",)))
    resolved = await backend.resolve_question(chat.token, asked.question_id)
    assert (resolved.status, resolved.answers) == (QuestionStatus.RESOLVED, answers)
    [work] = await work_now(backend, chat.token)
    assert work.answered_questions == ()
    assert await backend.list_questions(alice, session_id, include_answered=True) == [resolved]


async def test_question_dismissed(backend: Backend, alice: UserId, chat: Chat) -> None:
    """A dismissed question is answered without answers and reaches the machine the same way."""
    reply = await claimed(backend, alice, chat)
    asked = await backend.record_question(
        chat.token, reply.message_id, QuestionAsk("que_1", [COLOUR])
    )
    dismissed = await backend.answer_question(alice, asked.question_id, None)
    assert (dismissed.status, dismissed.answers, dismissed.dismissed) == (
        QuestionStatus.ANSWERED,
        None,
        True,
    )
    [work] = await work_now(backend, chat.token)
    assert work.answered_questions == (dismissed,)


async def test_bad_answers_change_nothing(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """Wrong answers, another user's question and an unknown one are refused; it stays pending."""
    reply = await claimed(backend, alice, chat)
    asked = await backend.record_question(
        chat.token, reply.message_id, QuestionAsk("q", [COLOUR, TOPPINGS])
    )
    refusals = [
        ((("Red",),), r"^Give one answer for each of the 2 questions\.$"),
        (((), ("Cheese",)), r"^The answer to question 1 must not be empty\.$"),
        ((("Red", "Blue"), ("Cheese",)), r"^Question 1 takes one answer\.$"),
        ((("Red",), ("Ham",)), r"^The answer to question 2 must be one of its choices\.$"),
        ((("  ",), ("Cheese",)), r"^The answer to question 1 must not be empty\.$"),
    ]
    for answers, message in refusals:
        with pytest.raises(InvalidInput, match=message):
            await backend.answer_question(alice, asked.question_id, answers)
    with pytest.raises(NotFound, match=r"^No such question\.$"):
        await backend.answer_question(bob, asked.question_id, (("Red",), ("Cheese",)))
    with pytest.raises(NotFound, match=r"^No such question\.$"):
        await backend.answer_question(alice, QuestionId("qst_missing"), None)
    with pytest.raises(NotFound, match=r"^No such chat session\.$"):
        await backend.list_questions(bob, chat.session.chat_session_id)
    assert await backend.list_questions(alice, chat.session.chat_session_id) == [asked]


async def test_questions_expire_when_the_reply_ends(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Pending and answered questions of a reply expire when it ends; answers come too late."""
    reply = await claimed(backend, alice, chat)
    waiting = await backend.record_question(
        chat.token, reply.message_id, QuestionAsk("q1", [COLOUR])
    )
    answered = await backend.record_question(
        chat.token, reply.message_id, QuestionAsk("q2", [COLOUR])
    )
    await backend.answer_question(alice, answered.question_id, (("Blue",),))
    await backend.end_reply(chat.token, reply.message_id, MessageStatus.INTERRUPTED, "Restarted")
    with pytest.raises(Conflict, match=r"no longer waiting for an answer"):
        await backend.answer_question(alice, waiting.question_id, (("Red",),))
    with pytest.raises(Conflict, match=r"no answer to pass on"):
        await backend.resolve_question(chat.token, answered.question_id)
    kept = await backend.list_questions(alice, chat.session.chat_session_id, True)
    assert [(q.status, q.answers) for q in kept] == [
        (QuestionStatus.EXPIRED, None),
        (QuestionStatus.EXPIRED, (("Blue",),)),
    ]
    [work] = await work_now(backend, chat.token)
    assert work.answered_questions == ()


async def test_record_question_refusals(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Questions need a streaming reply and something to ask; unknown IDs are NotFound."""
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(Conflict, match=r"^That message is not a reply\.$"):
        await backend.record_question(chat.token, message.message_id, QuestionAsk("q", [COLOUR]))
    with pytest.raises(InvalidInput, match=r"^A question request must ask at least one question"):
        await backend.record_question(chat.token, reply.message_id, QuestionAsk("q", []))
    with pytest.raises(InvalidInput, match=r"^A question must not be empty\.$"):
        await backend.record_question(
            chat.token, reply.message_id, QuestionAsk("q", [Question(" ", "h", ())])
        )
    await backend.complete_message(chat.token, reply.message_id, "done")
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.record_question(chat.token, reply.message_id, QuestionAsk("q", [COLOUR]))
    with pytest.raises(NotFound, match=r"^No such question\.$"):
        await backend.resolve_question(chat.token, QuestionId("qst_missing"))
    assert await backend.list_questions(alice, chat.session.chat_session_id) == []


async def test_watch_requests_follows_permissions_and_questions(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """watch_requests yields the session's requests, then again as they are asked and answered."""
    session_id = chat.session.chat_session_id
    async with watching(backend.watch_requests(alice, session_id)) as updates:
        assert await next_value(updates) == ([], [])
        reply = await backend.claim_message(
            chat.token, (await ask(backend, alice, chat)).message_id
        )
        permission = await backend.record_permission(
            chat.token, reply.message_id, PermissionAsk("p", "bash", "ls")
        )
        asked = await backend.record_question(
            chat.token, reply.message_id, QuestionAsk("q", [COLOUR])
        )
        assert await _until(updates, lambda now: len(now[1]) == 1) == ([permission], [asked])
        answered = await backend.answer_question(alice, asked.question_id, (("Red",),))
        assert await _until(updates, lambda now: now[1][0].status != "pending") == (
            [permission],
            [answered],
        )
    async with watching(backend.watch_requests(bob, session_id)) as stranger:
        with pytest.raises(NotFound):
            await next_value(stranger)


async def _until(
    updates: AsyncIterator[tuple[list[PermissionRequest], list[QuestionRequest]]],
    done: Callable[[tuple[list[PermissionRequest], list[QuestionRequest]]], bool],
) -> tuple[list[PermissionRequest], list[QuestionRequest]]:
    """The first value ``done`` accepts (a backend may show a step in between)."""
    while not done(value := await next_value(updates)):
        pass
    return value


async def test_waiting_questions_of_a_user(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """Pending questions are listed with their machine and worker, for their user only."""
    reply = await claimed(backend, alice, chat)
    asked = await backend.record_question(chat.token, reply.message_id, QuestionAsk("q", [COLOUR]))
    async with watching(backend.watch_waiting_questions(alice)) as updates:
        [waiting] = await next_value(updates)
        assert (waiting.user_id, waiting.request, waiting.machine_id, waiting.worker_id) == (
            alice,
            asked,
            chat.worker.machine_id,
            chat.worker.worker_id,
        )
        assert await backend.list_waiting_questions(None) == [waiting]
        assert await backend.list_waiting_questions(bob) == []
        await backend.answer_question(alice, asked.question_id, None)
        assert await next_value(updates) == []

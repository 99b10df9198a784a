"""Questions over the machine API: recorded and resolved over HTTP, malformed ones refused."""

from __future__ import annotations

import pytest

from tests.unit.test_web_support import Chat, machine_call

pytestmark = pytest.mark.anyio

BAD_QUESTIONS = (
    "The field 'questions' must be a list of questions, each with its question, header and options."
)
COLOUR = {
    "question": "Which colour?",
    "header": "Colour",
    "options": [{"label": "Red", "description": ""}],
    "multiple": False,
    "custom": True,
}


async def _reply_id(chat: Chat) -> str:
    session = await chat.start()
    sent = await chat.web.backend.send_message(chat.user, session.chat_session_id, "paint")
    _, body = await machine_call(chat.web, chat.token, "claim_message", message_id=sent.message_id)
    return str(body["value"]["message_id"])


async def test_a_question_is_recorded_and_resolved_over_http(chat: Chat) -> None:
    """record_question stores it pending; after the owner answers, resolve_question resolves it."""
    web, token = chat.web, chat.token
    reply_id = await _reply_id(chat)
    status, body = await machine_call(
        web,
        token,
        "record_question",
        message_id=reply_id,
        agent_request_id="que_1",
        questions=[COLOUR],
    )
    assert (status, body["value"]["status"], body["value"]["questions"]) == (
        200,
        "pending",
        [COLOUR],
    )
    question_id = body["value"]["question_id"]
    await web.backend.answer_question(chat.user, question_id, (("Red",),))
    status, body = await machine_call(web, token, "resolve_question", question_id=question_id)
    assert (status, body["value"]["status"], body["value"]["answers"]) == (
        200,
        "resolved",
        [["Red"]],
    )


@pytest.mark.parametrize(
    ("questions", "status", "sentence"),
    [
        ("Which colour?", 400, BAD_QUESTIONS),
        ([{"question": "Which colour?"}], 400, BAD_QUESTIONS),
        ([{**COLOUR, "options": "Red"}], 400, BAD_QUESTIONS),
        ([], 400, "A question request must ask at least one question."),
        ([{**COLOUR, "question": " "}], 400, "A question must not be empty."),
    ],
)
async def test_malformed_questions_get_one_sentence(
    chat: Chat, questions: object, status: int, sentence: str
) -> None:
    """Questions of the wrong shape, none, or blank are refused; nothing is stored."""
    reply_id = await _reply_id(chat)
    got, body = await machine_call(
        chat.web,
        chat.token,
        "record_question",
        message_id=reply_id,
        agent_request_id="q",
        questions=questions,
    )
    assert (got, body["error"]) == (status, sentence)
    assert await _questions_of(chat) == []


async def _questions_of(chat: Chat) -> list[object]:
    sessions = await chat.web.backend.list_sessions(chat.user, chat.worker.worker_id)
    found: list[object] = []
    for session in sessions:
        found += await chat.web.backend.list_questions(chat.user, session.chat_session_id, True)
    return found

"""The browser's questions API: listed, answered or dismissed once, bad answers refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.domain.questions import Question, QuestionOption, QuestionRequest
from orchestrator.domain.replies import QuestionAsk
from orchestrator.entrypoints.web.questions_api import BAD_ANSWERS
from tests.unit.test_web_support import Chat, running_app

pytestmark = pytest.mark.anyio

COLOUR = Question(
    "Which colour?", "Colour", (QuestionOption("Red"), QuestionOption("Blue")), custom=False
)


async def _asked(chat: Chat) -> QuestionRequest:
    backend = chat.web.backend
    _session, reply = await chat.claimed("paint it")
    return await backend.record_question(
        chat.token, reply.message_id, QuestionAsk("que_1", [COLOUR])
    )


async def _listed(chat: Chat, question: QuestionRequest, every: bool = False) -> list[object]:
    path = f"/api/sessions/{question.chat_session_id}/questions"
    response = await chat.web.client.get(path, params={"all": "1"} if every else {})
    assert response.status == 200
    return [
        (q["question_id"], q["status"], q["answers"], q["dismissed"])
        for q in (await response.json())["questions"]
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/sessions/chs_1/questions"),
        ("POST", "/api/questions/qst_1/answer"),
    ],
)
async def test_question_endpoints_need_a_session(tmp_path: Path, method: str, path: str) -> None:
    """Without signing in, the questions API is 401."""
    async with running_app(tmp_path) as web:
        response = await web.client.request(method, path, json={})
        assert response.status == 401


async def test_a_question_is_listed_answered_once_and_kept(chat: Chat) -> None:
    """A pending question is listed, answered once (409 after); ``?all=1`` keeps the answer."""
    asked = await _asked(chat)
    assert await _listed(chat, asked) == [(asked.question_id, "pending", None, False)]
    path = f"/api/questions/{asked.question_id}/answer"
    status, body = await chat.post(path, {"answers": [["Blue"]]})
    assert status == 200
    assert (body["question"]["status"], body["question"]["answers"]) == ("answered", [["Blue"]])
    again = await chat.post(path, {"answers": [["Red"]]})
    assert again == (409, again[1])
    assert again[1]["error"] == "This question is no longer waiting for an answer."
    assert await _listed(chat, asked) == []
    assert await _listed(chat, asked, every=True) == [
        (asked.question_id, "answered", [["Blue"]], False)
    ]


async def test_a_question_is_dismissed(chat: Chat) -> None:
    """``{dismiss: true}`` answers the question with no answers."""
    asked = await _asked(chat)
    status, body = await chat.post(f"/api/questions/{asked.question_id}/answer", {"dismiss": True})
    assert status == 200
    assert (body["question"]["answers"], body["question"]["dismissed"]) == (None, True)


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({}, BAD_ANSWERS),
        ({"answers": "Blue"}, BAD_ANSWERS),
        ({"answers": [[1]]}, BAD_ANSWERS),
        ({"answers": [["Green"]]}, "The answer to question 1 must be one of its choices."),
        ({"answers": [["Red"], ["Blue"]]}, "Give one answer for each of the 1 questions."),
        ({"dismiss": "yes"}, BAD_ANSWERS),
    ],
)
async def test_bad_answers_are_400_and_change_nothing(
    chat: Chat, body: dict[str, object], sentence: str
) -> None:
    """A malformed or unfitting answer is one sentence and a 400; the question stays pending."""
    asked = await _asked(chat)
    status, reply = await chat.post(f"/api/questions/{asked.question_id}/answer", body)
    assert (status, reply["error"]) == (400, sentence)
    assert await _listed(chat, asked) == [(asked.question_id, "pending", None, False)]


async def test_another_users_or_an_unknown_question_is_not_found(chat: Chat) -> None:
    """Someone else's question and an unknown one are 404; the question stays pending."""
    asked = await _asked(chat)
    client = await chat.web.new_client()
    csrf = await chat.web.sign_in(client, "mallory")
    response = await client.post(
        f"/api/questions/{asked.question_id}/answer",
        json={"answers": [["Red"]]},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 404
    assert (await response.json())["error"] == "No such question."
    status, body = await chat.post("/api/questions/qst_unknown/answer", {"answers": [["Red"]]})
    assert (status, body["error"]) == (404, "No such question.")
    assert await _listed(chat, asked) == [(asked.question_id, "pending", None, False)]

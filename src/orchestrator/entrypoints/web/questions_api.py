"""The browser's questions API: what the agent asked in a session, and the user's answers.

Its routes are declared in :mod:`orchestrator.adapters.browser_api` and registered by
:mod:`.browser_routes`.

Same conventions as :mod:`.chat_api`: session cookie, CSRF token on changes,
another user's question is 404.
"""

from __future__ import annotations

from typing import Final, cast

from aiohttp import web

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.questions import Answers
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import (
    QUESTION,
    SESSION,
    Body,
    read_body,
    record_response,
)
from orchestrator.entrypoints.web.state import BACKEND

BAD_ANSWERS: Final = (
    "Send 'answers' as a list with one list of chosen or typed answers per question,"
    " or 'dismiss': true."
)


def parse_answers(body: Body) -> Answers | None:
    """The answers in ``{answers: [[...], ...]}``, or None for ``{dismiss: true}``."""
    if body.data.get("dismiss") is True and "answers" not in body.data:
        return None
    raw = body.data.get("answers")
    if not isinstance(raw, list) or not all(
        isinstance(answer, list) and all(isinstance(text, str) for text in answer) for answer in raw
    ):
        raise InvalidInput(BAD_ANSWERS)
    return tuple(tuple(cast(list[str], answer)) for answer in raw)


async def list_questions(request: web.Request) -> web.Response:
    """``GET /api/sessions/{session_id}/questions[?all=1]``: questions waiting (or all)."""
    session_id = SESSION.of(request)
    every = request.query.get("all") == "1"
    found = await request.app[BACKEND].list_questions(require_user(request), session_id, every)
    return record_response("questions", found)


async def answer_question(request: web.Request) -> web.Response:
    """``POST /api/questions/{question_id}/answer {answers: [[label or text, ...], ...]}``."""
    user = require_user(request)
    question_id = QUESTION.of(request)
    answers = parse_answers(await read_body(request))
    answered = await request.app[BACKEND].answer_question(user, question_id, answers)
    return record_response("question", answered)

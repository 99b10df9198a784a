"""Questions the agent asks the user during a reply (opencode's ``question`` tool).

A question request holds one or more questions, each with its choices; the user
picks one choice (several where the question allows it) or types an answer of
their own (unless the question forbids it), or dismisses the whole request. Its
life is a permission request's: ``pending`` until the user answers, ``answered``
until the machine has passed the answer on (``resolved``), ``expired`` when the
reply ends first. The answer stays on the record, so the card keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import attrs

from orchestrator.domain.errors import InvalidInput, PayloadTooLarge
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineId,
    MessageId,
    QuestionId,
    UserId,
    WorkerId,
)
from orchestrator.domain.request_status import RequestStatus
from orchestrator.domain.text import bounded

#: Questions in one request, choices per question.
MAX_QUESTIONS: Final = 10
MAX_OPTIONS: Final = 50
#: A question's text, a choice's label or description, a typed answer.
MAX_QUESTION_TEXT_LENGTH: Final = 10_000
MAX_AGENT_REQUEST_ID_LENGTH: Final = 200

ALREADY_ANSWERED: Final = "This question is no longer waiting for an answer."
NO_ANSWER_TO_PASS_ON: Final = "This question has no answer to pass on."  # noqa: S105
NO_QUESTION: Final = "No such question."


#: A question lives as a permission request does (see ``domain.request_status``).
QuestionStatus = RequestStatus


@attrs.frozen
class QuestionOption:
    label: str
    description: str = ""


@attrs.frozen
class Question:
    question: str
    #: A very short label (opencode: at most 30 characters).
    header: str
    options: tuple[QuestionOption, ...]
    #: Several choices may be picked.
    multiple: bool = False
    #: The user may type an answer of their own.
    custom: bool = True


#: One answer per question, in order: the picked labels, or the typed text.
Answers = tuple[tuple[str, ...], ...]


@attrs.frozen
class QuestionRequest:
    question_id: QuestionId
    chat_session_id: ChatSessionId
    message_id: MessageId
    #: The agent's own ID for the request (opencode's ``que_…``).
    agent_request_id: str
    questions: tuple[Question, ...]
    status: QuestionStatus
    created_at: datetime
    #: The user's answers (None until answered, and when dismissed).
    answers: Answers | None = None
    dismissed: bool = False


@attrs.frozen
class WaitingQuestion:
    """A question waiting for its user, with where it comes from (the inbox, notifications)."""

    user_id: UserId
    request: QuestionRequest
    machine_id: MachineId
    machine_name: str
    worker_id: WorkerId
    worker_label: str


def _bounded(value: str, what: str, *, blank_ok: bool = False) -> str:
    return bounded(value, MAX_QUESTION_TEXT_LENGTH, what, blank_ok=blank_ok)


def validate_question_request(
    agent_request_id: str, questions: Sequence[Question]
) -> tuple[str, tuple[Question, ...]]:
    """Check the agent's request ID and its questions: present, bounded, choices named."""
    bounded(agent_request_id, MAX_AGENT_REQUEST_ID_LENGTH, "The agent request ID")
    if not questions:
        raise InvalidInput("A question request must ask at least one question.")
    if len(questions) > MAX_QUESTIONS:
        raise PayloadTooLarge(f"A question request may ask at most {MAX_QUESTIONS} questions.")
    for question in questions:
        _bounded(question.question, "A question")
        _bounded(question.header, "A question's header", blank_ok=True)
        if len(question.options) > MAX_OPTIONS:
            raise PayloadTooLarge(f"A question may offer at most {MAX_OPTIONS} choices.")
        if not question.options and not question.custom:
            raise InvalidInput("A question needs choices or must allow a typed answer.")
        for option in question.options:
            _bounded(option.label, "A choice's label")
            _bounded(option.description, "A choice's description", blank_ok=True)
    return agent_request_id, tuple(questions)


def validate_answers(questions: Sequence[Question], answers: Sequence[Sequence[str]]) -> Answers:
    """The user's answers if they fit the questions: one each, a choice or allowed text."""
    if len(answers) != len(questions):
        raise InvalidInput(f"Give one answer for each of the {len(questions)} questions.")
    checked = []
    for number, (question, answer) in enumerate(zip(questions, answers, strict=True), 1):
        picked = tuple(answer)
        if not picked or any(not isinstance(text, str) or not text.strip() for text in picked):
            raise InvalidInput(f"The answer to question {number} must not be empty.")
        if len(picked) > 1 and not question.multiple:
            raise InvalidInput(f"Question {number} takes one answer.")
        labels = {option.label for option in question.options}
        for text in picked:
            _bounded(text, f"The answer to question {number}")
            if text not in labels and not question.custom:
                raise InvalidInput(f"The answer to question {number} must be one of its choices.")
        checked.append(picked)
    return tuple(checked)

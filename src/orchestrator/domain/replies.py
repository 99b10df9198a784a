"""How a reply moves: claimed from the queue, asking permissions and questions, ended once.

Pure transitions, as :mod:`orchestrator.domain.commands` has for commands:
each takes the records it reads and returns the ones it changes. The SQLite
backend and the in-memory fake only load the records, call the transition and
save what it returns, so a rule is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from orchestrator.domain.chat import (
    ChatMessage,
    ChatSession,
    MessageRole,
    MessageStatus,
    PermissionAnswer,
    PermissionRequest,
    PermissionStatus,
    ensure_claimable,
    ensure_streaming,
    validate_permission_edit,
    validate_permission_request,
)
from orchestrator.domain.errors import Conflict
from orchestrator.domain.ids import MessageId, PermissionId, QuestionId
from orchestrator.domain.notifications import INBOX_ENDINGS, reply_preview
from orchestrator.domain.questions import (
    ALREADY_ANSWERED,
    NO_ANSWER_TO_PASS_ON,
    Answers,
    Question,
    QuestionRequest,
    QuestionStatus,
    validate_answers,
    validate_question_request,
)


def claim_message(
    message: ChatMessage,
    session: ChatSession,
    streaming: ChatMessage | None,
    oldest_pending: MessageId | None,
    reply_id: MessageId,
    now: datetime,
) -> tuple[ChatMessage, ChatMessage]:
    """Claim a queued message for the machine: the message is processing, its reply streams."""
    ensure_claimable(message, session, streaming, oldest_pending)
    reply = ChatMessage(
        reply_id,
        session.chat_session_id,
        MessageRole.ASSISTANT,
        "",
        MessageStatus.STREAMING,
        now,
        reply_to=message.message_id,
        model=session.model,
    )
    return attrs.evolve(message, status=MessageStatus.PROCESSING), reply


@attrs.frozen
class PermissionAsk:
    """What an agent asks permission for, as the machine reports it."""

    agent_request_id: str
    tool: str
    description: str
    file: str = ""
    diff: str = ""
    diff_size: int = 0


def ask_permission(
    permission_id: PermissionId, reply: ChatMessage, ask: PermissionAsk, now: datetime
) -> PermissionRequest:
    """A pending permission request of a streaming reply, its fields checked."""
    agent_request_id, tool, description = validate_permission_request(
        ask.agent_request_id, ask.tool, ask.description
    )
    file, diff, diff_size = validate_permission_edit(ask.file, ask.diff, ask.diff_size)
    ensure_streaming(reply)
    return PermissionRequest(
        permission_id,
        reply.chat_session_id,
        reply.message_id,
        agent_request_id,
        tool,
        description,
        PermissionStatus.PENDING,
        now,
        file=file,
        diff=diff,
        diff_size=diff_size,
    )


@attrs.frozen
class ReplyEnd:
    """What ending a reply changes."""

    reply: ChatMessage
    #: The user message it answered, now completed (None if the reply answers none).
    asked: ChatMessage | None
    #: The reply's requests that can no longer be answered, now expired.
    permissions: tuple[PermissionRequest, ...]
    questions: tuple[QuestionRequest, ...]
    #: For endings the inbox lists: the preview it shows; otherwise None.
    preview: str | None


def end_reply(
    reply: ChatMessage,
    asked: ChatMessage | None,
    permissions: Iterable[PermissionRequest],
    questions: Iterable[QuestionRequest],
    status: MessageStatus,
    content: str,
    error: str | None,
) -> ReplyEnd:
    """End a streaming reply once: its question is completed and its open requests expire."""
    ensure_streaming(reply)
    mine = reply.message_id
    return ReplyEnd(
        attrs.evolve(reply, status=status, content=content, error=error),
        None if asked is None else attrs.evolve(asked, status=MessageStatus.COMPLETED),
        tuple(
            attrs.evolve(p, status=PermissionStatus.EXPIRED)
            for p in permissions
            if p.message_id == mine and p.status.open
        ),
        tuple(
            attrs.evolve(q, status=QuestionStatus.EXPIRED)
            for q in questions
            if q.message_id == mine and q.status.open
        ),
        reply_preview(content, error) if status in INBOX_ENDINGS else None,
    )


def answer_permission(request: PermissionRequest, answer: PermissionAnswer) -> PermissionRequest:
    """The user's answer to a request still waiting for one."""
    if request.status is not PermissionStatus.PENDING:
        raise Conflict("This permission request is no longer waiting for an answer.")
    return attrs.evolve(request, status=PermissionStatus.ANSWERED, answer=answer)


def resolve_permission(request: PermissionRequest) -> PermissionRequest:
    """The machine passed the user's answer on to its agent."""
    if request.status is not PermissionStatus.ANSWERED:
        raise Conflict("This permission request has no answer to pass on.")
    return attrs.evolve(request, status=PermissionStatus.RESOLVED)


@attrs.frozen
class QuestionAsk:
    """What an agent asks its user during a reply, as the machine reports it."""

    agent_request_id: str
    questions: Sequence[Question]


def ask_question(
    question_id: QuestionId, reply: ChatMessage, ask: QuestionAsk, now: datetime
) -> QuestionRequest:
    """A pending question of a streaming reply to its user, its fields checked."""
    agent_request_id, asked = validate_question_request(ask.agent_request_id, ask.questions)
    ensure_streaming(reply)
    return QuestionRequest(
        question_id,
        reply.chat_session_id,
        reply.message_id,
        agent_request_id,
        asked,
        QuestionStatus.PENDING,
        now,
    )


def answer_question(request: QuestionRequest, answers: Answers | None) -> QuestionRequest:
    """The user's answers to a question still waiting for them (None: dismissed)."""
    if request.status is not QuestionStatus.PENDING:
        raise Conflict(ALREADY_ANSWERED)
    checked = None if answers is None else validate_answers(request.questions, answers)
    return attrs.evolve(
        request, status=QuestionStatus.ANSWERED, answers=checked, dismissed=checked is None
    )


def resolve_question(request: QuestionRequest) -> QuestionRequest:
    """The machine passed the user's answers on to its agent."""
    if request.status is not QuestionStatus.ANSWERED:
        raise Conflict(NO_ANSWER_TO_PASS_ON)
    return attrs.evolve(request, status=QuestionStatus.RESOLVED)

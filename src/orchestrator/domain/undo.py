"""Undo and redo of a session's turns, file changes included (opencode's revert/unrevert).

The owner asks to undo a finished reply (and every later one) or to redo what is
undone; the session records the request and the machine carries it out on the
agent, then reports back. Requests are counted, so one made while the machine
works on another is never lost; the session says what is undone, so the
transcript can show it. The rules are pure functions every backend applies.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from orchestrator.domain.chat import (
    MAX_REASON_LENGTH,
    ChatMessage,
    ChatSession,
    MessageRole,
    ensure_open,
)
from orchestrator.domain.diffs import TurnDiffPart
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.parts import PartBody

NO_REPLY = "No such reply in this session."
BUSY = "Wait for the reply to finish before undoing or redoing a turn."
NOT_UNDOABLE = "This reply cannot be undone: the agent recorded no turn for it."
NOTHING_UNDONE = "Nothing is undone in this session."
REDO_GONE = "Redo is no longer possible: a message was sent after the undo."


def agent_turn_of(body: PartBody | None) -> str | None:
    """The agent's ID of a reply's turn, from its turn-diff part's body (None without one)."""
    if not isinstance(body, TurnDiffPart):
        return None
    return body.agent_message_id or None


def request_undo(
    session: ChatSession,
    reply: ChatMessage | None,
    agent_message_id: str | None,
    streaming: ChatMessage | None,
    now: datetime,
) -> ChatSession:
    """The session with ``reply`` and every later reply to be undone.

    ``agent_message_id`` is the agent's ID of the reply's turn (from its turn-diff
    part); ``streaming`` is the session's reply being written, if any.
    """
    ensure_open(session)
    if (
        reply is None
        or reply.chat_session_id != session.chat_session_id
        or reply.role is not MessageRole.ASSISTANT
    ):
        raise NotFound(NO_REPLY)
    if streaming is not None or not reply.status.finished:
        raise Conflict(BUSY)
    if not agent_message_id:
        raise Conflict(NOT_UNDOABLE)
    return attrs.evolve(
        session,
        undone_from=reply.message_id,
        undo_agent_id=agent_message_id,
        undone_at=now,
        undo_requests=session.undo_requests + 1,
        undo_error=None,
    )


def request_redo(
    session: ChatSession, streaming: ChatMessage | None, last_message_at: datetime | None
) -> ChatSession:
    """The session with what is undone to be redone.

    Once a message was sent after the undo (``last_message_at``, the session's newest
    message), the agent has dropped the undone turns for good: redo is refused.
    """
    ensure_open(session)
    if session.undone_from is None:
        raise Conflict(NOTHING_UNDONE)
    if streaming is not None:
        raise Conflict(BUSY)
    undone_at = session.undone_at
    if undone_at is not None and last_message_at is not None and last_message_at > undone_at:
        raise Conflict(REDO_GONE)
    return attrs.evolve(
        session,
        undone_from=None,
        undo_agent_id=None,
        undone_at=None,
        undo_requests=session.undo_requests + 1,
        undo_error=None,
    )


def finish_undo(session: ChatSession, applied: int, error: str | None) -> ChatSession:
    """The session once the machine carried out the requests up to ``applied``.

    A failed undo leaves nothing undone, with ``error`` saying why; a report
    older than one already made changes nothing.
    """
    if applied <= session.undo_applied or applied > session.undo_requests:
        return session
    if error is None:
        return attrs.evolve(session, undo_applied=applied, undo_error=None)
    return attrs.evolve(
        session,
        undo_applied=applied,
        undone_from=None,
        undo_agent_id=None,
        undone_at=None,
        undo_error=error[:MAX_REASON_LENGTH],
    )

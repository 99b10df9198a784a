"""What a machine must act on: its workers' sessions with their queued and streaming messages.

Three reads (sessions, open messages, answered permission requests) grouped in
Python, rather than one query per session.
"""

from __future__ import annotations

from collections import defaultdict

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain.chat import (
    ChatMessage,
    ChatSessionStatus,
    MessageStatus,
    PermissionRequest,
    SessionWork,
)
from orchestrator.domain.questions import QuestionRequest

# Open sessions, and ended ones whose reply still streams (the machine must stop it).
_WORK_SESSIONS = """
    SELECT s.* FROM chat_sessions AS s JOIN workers AS w USING (worker_id)
    WHERE w.machine_id = ? AND w.status != 'pending_authorization' AND (
        s.status != 'terminated' OR EXISTS (
            SELECT 1 FROM chat_messages AS m
            WHERE m.chat_session_id = s.chat_session_id AND m.status = 'streaming'
        )
    )
    ORDER BY s.created_at, s.rowid
"""
_WORK_MESSAGES = """
    SELECT m.* FROM chat_messages AS m
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE w.machine_id = ? AND m.status IN ('pending', 'streaming')
    ORDER BY m.timestamp, m.rowid
"""
_WORK_PERMISSIONS = """
    SELECT p.* FROM permission_requests AS p
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE w.machine_id = ? AND p.status = 'answered'
    ORDER BY p.created_at, p.rowid
"""
_WORK_QUESTIONS = """
    SELECT q.* FROM question_requests AS q
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE w.machine_id = ? AND q.status = 'answered'
    ORDER BY q.created_at, q.rowid
"""


async def session_work(tx: Tx, machine_id: str) -> list[SessionWork]:
    """The work list of a machine, sessions oldest first."""
    sessions = [rows.chat_session(row) for row in await tx.all(_WORK_SESSIONS, machine_id)]
    pending: dict[str, list[ChatMessage]] = defaultdict(list)
    streaming: dict[str, ChatMessage] = {}
    for row in await tx.all(_WORK_MESSAGES, machine_id):
        message = rows.chat_message(row)
        if message.status is MessageStatus.STREAMING:
            streaming[message.chat_session_id] = message
        else:
            pending[message.chat_session_id].append(message)
    answered: dict[str, list[PermissionRequest]] = defaultdict(list)
    for row in await tx.all(_WORK_PERMISSIONS, machine_id):
        answered[row["chat_session_id"]].append(rows.permission(row))
    questions: dict[str, list[QuestionRequest]] = defaultdict(list)
    for row in await tx.all(_WORK_QUESTIONS, machine_id):
        questions[row["chat_session_id"]].append(rows.question(row))
    return [
        SessionWork(
            session=session,
            # An ended session's queued messages wait until it is restored.
            pending_messages=()
            if session.status is ChatSessionStatus.TERMINATED
            else tuple(pending[session.chat_session_id]),
            streaming_reply=streaming.get(session.chat_session_id),
            answered_permissions=tuple(answered[session.chat_session_id]),
            answered_questions=tuple(questions[session.chat_session_id]),
        )
        for session in sessions
    ]

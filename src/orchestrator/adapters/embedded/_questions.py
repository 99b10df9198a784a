"""Questions on the embedded backend: recorded by the machine, answered by the owner.

Questions and answers are stored as JSON; like permission requests, a change
touches the session's topics with ``requests`` (``touch_session``): the session's
``("requests", id)`` and every session's ``REQUESTS``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from functools import partial

import attrs

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._chat import REQUESTS, ChatUserSide, touch_session
from orchestrator.adapters.embedded._chat_machine import ChatMachineSide
from orchestrator.adapters.embedded._push import waiting_query
from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.records import from_row
from orchestrator.adapters.session_requests import session_requests
from orchestrator.domain import replies
from orchestrator.domain.chat import PermissionRequest
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineToken,
    MessageId,
    QuestionId,
    UserId,
)
from orchestrator.domain.questions import (
    NO_QUESTION,
    Answers,
    QuestionRequest,
    WaitingQuestion,
)

_OWNED_QUESTION = """
    SELECT q.*, s.worker_id, w.machine_id FROM question_requests AS q
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE q.question_id = ? AND s.user_id = ?
"""
_MACHINE_QUESTION = """
    SELECT q.*, s.worker_id FROM question_requests AS q
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE q.question_id = ? AND w.machine_id = ?
"""


_WAITING = waiting_query("question_requests")


_waiting = partial(from_row, cls=WaitingQuestion)


async def _load(tx: Tx, question_id: str) -> QuestionRequest:
    row = await tx.one("SELECT * FROM question_requests WHERE question_id = ?", question_id)
    assert row is not None
    return rows.question(row)


class QuestionSide(ChatUserSide, ChatMachineSide):
    """Both halves of questions on SQLite."""

    async def list_questions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[QuestionRequest]:
        found = await self._requests(user, session_id, "question_requests", include_answered)
        return [rows.question(row) for row in found]

    def watch_requests(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncGenerator[tuple[list[PermissionRequest], list[QuestionRequest]], None]:
        return self._store.feed.watch(
            [("requests", session_id)], lambda: session_requests(self, user, session_id)
        )

    async def answer_question(
        self, user: UserId, question_id: QuestionId, answers: Answers | None
    ) -> QuestionRequest:
        async with self._store.transaction(write=True) as tx:
            row = await tx.found(NO_QUESTION, _OWNED_QUESTION, question_id, user)
            answered = replies.answer_question(rows.question(row), answers)
            await tx.run(
                "UPDATE question_requests SET status = ?, answers = ?, dismissed = ?"
                " WHERE question_id = ?",
                answered.status.value,
                None if answered.answers is None else json.dumps(answered.answers),
                answered.dismissed,
                question_id,
            )
            touch_session(
                tx, row["worker_id"], row["chat_session_id"], row["machine_id"], requests=True
            )
            return await _load(tx, question_id)

    async def record_question(
        self, token: MachineToken, message_id: MessageId, ask: replies.QuestionAsk
    ) -> QuestionRequest:
        question_id = QuestionId(self._ids.new_id("question"))
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            now = self._now()
            request = replies.ask_question(question_id, message, ask, rows.from_ms(now))
            await tx.run(
                "INSERT INTO question_requests (question_id, chat_session_id, message_id,"
                " agent_request_id, questions, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                request.question_id,
                request.chat_session_id,
                request.message_id,
                request.agent_request_id,
                json.dumps([attrs.asdict(q) for q in request.questions]),
                request.status.value,
                now,
            )
            touch_session(
                tx, session.worker_id, session.chat_session_id, token.machine_id, requests=True
            )
            return await _load(tx, question_id)

    async def resolve_question(
        self, token: MachineToken, question_id: QuestionId
    ) -> QuestionRequest:
        async with self._as_machine(token) as (tx, _):
            row = await tx.found(NO_QUESTION, _MACHINE_QUESTION, question_id, token.machine_id)
            resolved = replies.resolve_question(rows.question(row))
            await tx.run(
                "UPDATE question_requests SET status = ? WHERE question_id = ?",
                resolved.status.value,
                question_id,
            )
            touch_session(
                tx, row["worker_id"], row["chat_session_id"], token.machine_id, requests=True
            )
            return await _load(tx, question_id)

    async def list_waiting_questions(self, user: UserId | None) -> list[WaitingQuestion]:
        async with self._store.transaction() as tx:
            return [_waiting(row) for row in await tx.all(_WAITING, user, user)]

    def watch_waiting_questions(
        self, user: UserId | None
    ) -> AsyncGenerator[list[WaitingQuestion], None]:
        return self._store.feed.watch([REQUESTS], lambda: self.list_waiting_questions(user))

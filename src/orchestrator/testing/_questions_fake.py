"""Questions for :class:`~orchestrator.testing.fakes.InMemoryBackend`: both sides, in a dict."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import TYPE_CHECKING

from orchestrator.adapters.session_requests import session_requests
from orchestrator.domain import replies
from orchestrator.domain.chat import PermissionRequest
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, QuestionId, UserId
from orchestrator.domain.notifications import worker_label
from orchestrator.domain.questions import (
    NO_QUESTION,
    Answers,
    QuestionRequest,
    QuestionStatus,
    WaitingQuestion,
)
from orchestrator.testing._chat_fake import ChatFakeBase


class QuestionFake(ChatFakeBase):
    """Question requests: recorded by the machine, answered by the owner, passed on."""

    questions: dict[QuestionId, QuestionRequest]

    if TYPE_CHECKING:  # provided by ChatUserFake

        async def list_permissions(
            self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
        ) -> list[PermissionRequest]: ...

    def _answered_questions(self, session_id: ChatSessionId) -> tuple[QuestionRequest, ...]:
        answered = (
            q
            for q in self.questions.values()
            if q.chat_session_id == session_id and q.status is QuestionStatus.ANSWERED
        )
        return tuple(sorted(answered, key=lambda q: q.created_at))

    def _drop_questions(self, sessions: Iterable[ChatSessionId]) -> None:
        gone = set(sessions)
        for request in [q for q in self.questions.values() if q.chat_session_id in gone]:
            del self.questions[request.question_id]

    async def list_questions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[QuestionRequest]:
        return self._requests_of(user, session_id, self.questions.values(), include_answered)

    def watch_requests(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncGenerator[tuple[list[PermissionRequest], list[QuestionRequest]], None]:
        return self._watch(lambda: session_requests(self, user, session_id))

    async def answer_question(
        self, user: UserId, question_id: QuestionId, answers: Answers | None
    ) -> QuestionRequest:
        request = self._user_record(user, self.questions.get(question_id), NO_QUESTION)
        request = self._save(replies.answer_question(request, answers))
        await self._commit()
        return request

    async def record_question(
        self, token: MachineToken, message_id: MessageId, ask: replies.QuestionAsk
    ) -> QuestionRequest:
        message, _ = self._machine_message(token, message_id)
        question_id = QuestionId(self.ids.new_id("question"))
        request = replies.ask_question(question_id, message, ask, self._now())
        self._save(request)
        await self._commit()
        return request

    async def resolve_question(
        self, token: MachineToken, question_id: QuestionId
    ) -> QuestionRequest:
        request = self._machine_record(token, self.questions.get(question_id), NO_QUESTION)
        request = self._save(replies.resolve_question(request))
        await self._commit()
        return request

    async def list_waiting_questions(self, user: UserId | None) -> list[WaitingQuestion]:
        waiting = []
        for request in self.questions.values():
            session = self.chat_sessions.get(request.chat_session_id)
            if request.status is not QuestionStatus.PENDING or session is None:
                continue
            if user is not None and session.user_id != user:
                continue
            worker = self.workers[session.worker_id]
            machine = self.machines[worker.machine_id]
            waiting.append(
                WaitingQuestion(
                    session.user_id,
                    request,
                    machine.machine_id,
                    machine.name,
                    worker.worker_id,
                    worker_label(worker.name, worker.directory),
                )
            )
        return sorted(waiting, key=lambda w: w.request.created_at)

    def watch_waiting_questions(
        self, user: UserId | None
    ) -> AsyncGenerator[list[WaitingQuestion], None]:
        return self._watch(lambda: self.list_waiting_questions(user))

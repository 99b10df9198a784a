"""Questions on Convex: ``backend_convex/convex/questions.ts``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import attrs

from orchestrator.adapters.convex import _wire as wire
from orchestrator.adapters.convex._calls import ConvexCalls, machine_args
from orchestrator.adapters.convex._pages import (
    PERMISSION_LIST,
    QUESTION_LIST,
    Read,
    changed,
    every,
    read_pages,
)
from orchestrator.domain.chat import PermissionRequest
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineToken,
    MessageId,
    QuestionId,
    UserId,
)
from orchestrator.domain.questions import Answers, QuestionRequest, WaitingQuestion
from orchestrator.domain.replies import QuestionAsk

#: The session's two request lists: the paged query of each, and the flag with which
#: ``questions:listRequests`` says that more follow its first page.
_REQUEST_LISTS = (
    ("chat:listPermissionsPage", PERMISSION_LIST, "hasMorePermissions"),
    ("questions:listQuestionsPage", QUESTION_LIST, "hasMoreQuestions"),
)


class ConvexQuestionSide(ConvexCalls):
    """Both halves of questions on Convex."""

    async def list_questions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[QuestionRequest]:
        args = self._server(userId=user, chatSessionId=session_id, all=include_answered)
        found = await every(self._query, "questions:listQuestionsPage", QUESTION_LIST, args)
        return [wire.question(q) for q in found]

    async def watch_requests(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncGenerator[tuple[list[PermissionRequest], list[QuestionRequest]], None]:
        args = self._server(userId=user, chatSessionId=session_id)
        every_one = {**args, "all": True}
        while True:
            first = await self._query("questions:listRequests", args)
            reads: list[Read] = [("questions:listRequests", args, first)]
            lists: list[list[Any]] = []
            for path, shape, more in _REQUEST_LISTS:
                page = {shape.key: first[shape.key], "hasMore": first[more]}
                items, pages = await read_pages(self._query, path, shape, every_one, page)
                lists.append(items)
                reads.extend(pages)
            permissions, questions = lists
            yield (
                [wire.permission(p) for p in permissions],
                [wire.question(q) for q in questions],
            )
            # Each page read is watched: a change in any of them reads the lists again.
            if not await changed(self._documents, reads):
                return  # the backend closed a watch

    async def answer_question(
        self, user: UserId, question_id: QuestionId, answers: Answers | None
    ) -> QuestionRequest:
        given = None if answers is None else [list(a) for a in answers]
        args = self._server(userId=user, questionId=question_id, answers=given)
        return wire.question(await self._call("mutation", "questions:answerQuestion", args))

    async def record_question(
        self, token: MachineToken, message_id: MessageId, ask: QuestionAsk
    ) -> QuestionRequest:
        args = machine_args(
            token,
            messageId=message_id,
            agentRequestId=ask.agent_request_id,
            questions=[attrs.asdict(q) for q in ask.questions],
        )
        return wire.question(await self._call("mutation", "questions:recordQuestion", args))

    async def resolve_question(
        self, token: MachineToken, question_id: QuestionId
    ) -> QuestionRequest:
        args = machine_args(token, questionId=question_id)
        return wire.question(await self._call("mutation", "questions:resolveQuestion", args))

    async def list_waiting_questions(self, user: UserId | None) -> list[WaitingQuestion]:
        return await self._list_waiting("questions:listWaiting", user, WaitingQuestion)

    def watch_waiting_questions(
        self, user: UserId | None
    ) -> AsyncGenerator[list[WaitingQuestion], None]:
        return self._watch_waiting("questions:listWaiting", user, WaitingQuestion)

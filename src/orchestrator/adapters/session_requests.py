"""A session's permission requests and questions read together, for ``watch_requests``."""

from __future__ import annotations

from typing import Protocol

from orchestrator.domain.chat import PermissionRequest
from orchestrator.domain.ids import ChatSessionId, UserId
from orchestrator.domain.questions import QuestionRequest


class _Requests(Protocol):
    async def list_permissions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[PermissionRequest]: ...

    async def list_questions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[QuestionRequest]: ...


async def session_requests(
    backend: _Requests, user: UserId, session_id: ChatSessionId
) -> tuple[list[PermissionRequest], list[QuestionRequest]]:
    """Every permission request and question of the session, answered ones included."""
    permissions = await backend.list_permissions(user, session_id, True)
    return permissions, await backend.list_questions(user, session_id, True)

"""The in-memory fake's records and shared helpers, declared once for its parts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import attrs

from orchestrator.domain.api_tokens import ApiToken
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    MessageStatus,
    PermissionRequest,
)
from orchestrator.domain.commands import Command
from orchestrator.domain.ids import (
    ApiTokenId,
    ChatSessionId,
    ChunkId,
    CommandId,
    JobId,
    JobRunId,
    MachineId,
    MachineToken,
    MessageId,
    PermissionId,
    QuestionId,
    UserId,
    WorkerId,
)
from orchestrator.domain.jobs import Job, JobRun
from orchestrator.domain.model import Machine, User, Worker
from orchestrator.domain.notifications import NotificationSettings, PushSubscription
from orchestrator.domain.parts import MessagePart, PartId
from orchestrator.domain.ports import IdGenerator
from orchestrator.domain.questions import QuestionRequest

T = TypeVar("T")


@attrs.frozen
class FinishedEnding:
    """How a reply ended, as the inbox keeps it (``finished_replies`` on SQLite)."""

    message_id: MessageId
    status: MessageStatus
    preview: str
    finished_at: datetime


class FakeState:
    """What every part of the fake reads and writes; ``InMemoryBackend`` provides it."""

    if TYPE_CHECKING:
        ids: IdGenerator
        users: dict[UserId, User]
        api_tokens: dict[ApiTokenId, ApiToken]
        api_token_hashes: dict[ApiTokenId, str]
        machines: dict[MachineId, Machine]
        workers: dict[WorkerId, Worker]
        chat_sessions: dict[ChatSessionId, ChatSession]
        chat_messages: dict[MessageId, ChatMessage]
        chunks: dict[ChunkId, ChatChunk]
        parts: dict[tuple[MessageId, PartId], MessagePart]
        sequences: dict[ChatSessionId, int]
        permissions: dict[PermissionId, PermissionRequest]
        questions: dict[QuestionId, QuestionRequest]
        commands: dict[CommandId, Command]
        jobs: dict[JobId, Job]
        job_runs: dict[JobRunId, JobRun]
        #: Runs whose status is final whatever their messages say.
        final_runs: set[JobRunId]
        push_subscriptions: dict[str, PushSubscription]
        notification_settings: dict[UserId, NotificationSettings]
        finished_replies: dict[MessageId, FinishedEnding]
        inbox_seen: dict[UserId, datetime]

        def _now(self) -> datetime: ...
        async def _commit(self) -> None: ...
        def _watch(self, query: Callable[[], Awaitable[T]]) -> AsyncGenerator[T, None]: ...
        def _wakeups(self) -> AsyncGenerator[None, None]: ...
        def _auth(self, token: MachineToken) -> Machine: ...
        def _owned_machine(self, user: UserId, machine_id: MachineId) -> Machine: ...
        def _owned_worker(self, user: UserId, worker_id: WorkerId) -> Worker: ...
        def _save(self, record: T) -> T: ...
        def _save_question(self, request: QuestionRequest) -> QuestionRequest: ...
        def _drop_questions(self, sessions: Iterable[ChatSessionId]) -> None: ...
        def _answered_questions(self, session_id: ChatSessionId) -> tuple[QuestionRequest, ...]: ...
        async def get_user(self, user_id: UserId) -> User: ...

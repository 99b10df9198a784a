"""The in-memory fake's records and shared helpers, declared once for its parts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import attrs

from orchestrator.domain import ids
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
    ChatSessionId,
    MachineId,
    MachineToken,
    MessageId,
    UserId,
    WorkerId,
)
from orchestrator.domain.jobs import Job, JobRun
from orchestrator.domain.model import IssuedWorkerToken, Machine, User, Worker
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


@attrs.define(eq=False)
class FakeState:
    """The fake's records, one dict per table; every part of the fake reads and writes them."""

    users: dict[ids.UserId, User] = attrs.field(factory=dict, init=False)
    password_hashes: dict[ids.UserId, str] = attrs.field(factory=dict, init=False)
    #: Each user's sign-in ids, oldest first.
    sign_ins: dict[ids.UserId, list[str]] = attrs.field(factory=dict, init=False)
    api_tokens: dict[ids.ApiTokenId, ApiToken] = attrs.field(factory=dict, init=False)
    api_token_hashes: dict[ids.ApiTokenId, str] = attrs.field(factory=dict, init=False)
    machines: dict[ids.MachineId, Machine] = attrs.field(factory=dict, init=False)
    #: Who holds each machine's lease, until when (see ``domain.lease``).
    leases: dict[ids.MachineId, tuple[str, datetime]] = attrs.field(factory=dict, init=False)
    secret_hashes: dict[ids.MachineId, str] = attrs.field(factory=dict, init=False)
    workers: dict[ids.WorkerId, Worker] = attrs.field(factory=dict, init=False)
    worker_tokens: dict[ids.WorkerId, IssuedWorkerToken] = attrs.field(factory=dict, init=False)
    chat_sessions: dict[ids.ChatSessionId, ChatSession] = attrs.field(factory=dict, init=False)
    chat_messages: dict[ids.MessageId, ChatMessage] = attrs.field(factory=dict, init=False)
    chunks: dict[ids.ChunkId, ChatChunk] = attrs.field(factory=dict, init=False)
    parts: dict[tuple[ids.MessageId, PartId], MessagePart] = attrs.field(factory=dict, init=False)
    #: Each session's last sequence (its chunks and parts share it).
    sequences: dict[ids.ChatSessionId, int] = attrs.field(factory=dict, init=False)
    permissions: dict[ids.PermissionId, PermissionRequest] = attrs.field(factory=dict, init=False)
    questions: dict[ids.QuestionId, QuestionRequest] = attrs.field(factory=dict, init=False)
    commands: dict[ids.CommandId, Command] = attrs.field(factory=dict, init=False)
    jobs: dict[ids.JobId, Job] = attrs.field(factory=dict, init=False)
    job_runs: dict[ids.JobRunId, JobRun] = attrs.field(factory=dict, init=False)
    final_runs: set[ids.JobRunId] = attrs.field(factory=set, init=False)
    push_subscriptions: dict[str, PushSubscription] = attrs.field(factory=dict, init=False)
    notification_settings: dict[ids.UserId, NotificationSettings] = attrs.field(
        factory=dict, init=False
    )
    #: Replies that ended (message id -> when, with its status and preview); the inbox mark.
    finished_replies: dict[ids.MessageId, FinishedEnding] = attrs.field(factory=dict, init=False)
    inbox_seen: dict[ids.UserId, datetime] = attrs.field(factory=dict, init=False)

    if TYPE_CHECKING:
        ids: IdGenerator

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

"""The in-memory fake's records and shared helpers, declared once for its parts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import attrs

from orchestrator.domain import ids as id_types
from orchestrator.domain.api_tokens import ApiToken
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    MessageStatus,
    PermissionRequest,
)
from orchestrator.domain.commands import Command
from orchestrator.domain.ids import MachineToken
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

    message_id: id_types.MessageId
    status: MessageStatus
    preview: str
    finished_at: datetime


@attrs.define(eq=False)
class FakeState:
    """The fake's records, one dict per table; every part of the fake reads and writes them."""

    users: dict[id_types.UserId, User] = attrs.field(factory=dict, init=False)
    password_hashes: dict[id_types.UserId, str] = attrs.field(factory=dict, init=False)
    #: Each user's sign-in ids, oldest first.
    sign_ins: dict[id_types.UserId, list[str]] = attrs.field(factory=dict, init=False)
    api_tokens: dict[id_types.ApiTokenId, ApiToken] = attrs.field(factory=dict, init=False)
    api_token_hashes: dict[id_types.ApiTokenId, str] = attrs.field(factory=dict, init=False)
    machines: dict[id_types.MachineId, Machine] = attrs.field(factory=dict, init=False)
    #: Who holds each machine's lease, until when (see ``domain.lease``).
    leases: dict[id_types.MachineId, tuple[str, datetime]] = attrs.field(factory=dict, init=False)
    secret_hashes: dict[id_types.MachineId, str] = attrs.field(factory=dict, init=False)
    workers: dict[id_types.WorkerId, Worker] = attrs.field(factory=dict, init=False)
    worker_tokens: dict[id_types.WorkerId, IssuedWorkerToken] = attrs.field(
        factory=dict, init=False
    )
    chat_sessions: dict[id_types.ChatSessionId, ChatSession] = attrs.field(factory=dict, init=False)
    chat_messages: dict[id_types.MessageId, ChatMessage] = attrs.field(factory=dict, init=False)
    chunks: dict[id_types.ChunkId, ChatChunk] = attrs.field(factory=dict, init=False)
    parts: dict[tuple[id_types.MessageId, PartId], MessagePart] = attrs.field(
        factory=dict, init=False
    )
    #: Each session's last sequence (its chunks and parts share it).
    sequences: dict[id_types.ChatSessionId, int] = attrs.field(factory=dict, init=False)
    permissions: dict[id_types.PermissionId, PermissionRequest] = attrs.field(
        factory=dict, init=False
    )
    questions: dict[id_types.QuestionId, QuestionRequest] = attrs.field(factory=dict, init=False)
    commands: dict[id_types.CommandId, Command] = attrs.field(factory=dict, init=False)
    jobs: dict[id_types.JobId, Job] = attrs.field(factory=dict, init=False)
    job_runs: dict[id_types.JobRunId, JobRun] = attrs.field(factory=dict, init=False)
    final_runs: set[id_types.JobRunId] = attrs.field(factory=set, init=False)
    push_subscriptions: dict[str, PushSubscription] = attrs.field(factory=dict, init=False)
    notification_settings: dict[id_types.UserId, NotificationSettings] = attrs.field(
        factory=dict, init=False
    )
    #: Replies that ended (message id -> when, with its status and preview); the inbox mark.
    finished_replies: dict[id_types.MessageId, FinishedEnding] = attrs.field(
        factory=dict, init=False
    )
    inbox_seen: dict[id_types.UserId, datetime] = attrs.field(factory=dict, init=False)

    if TYPE_CHECKING:
        ids: IdGenerator

        def _now(self) -> datetime: ...
        async def _commit(self) -> None: ...
        def _watch(self, query: Callable[[], Awaitable[T]]) -> AsyncGenerator[T, None]: ...
        def _wakeups(self) -> AsyncGenerator[None, None]: ...
        def _auth(self, token: MachineToken) -> Machine: ...
        def _owned_machine(
            self, user: id_types.UserId, machine_id: id_types.MachineId
        ) -> Machine: ...
        def _owned_worker(self, user: id_types.UserId, worker_id: id_types.WorkerId) -> Worker: ...
        def _save(self, record: T) -> T: ...
        def _drop_questions(self, sessions: Iterable[id_types.ChatSessionId]) -> None: ...
        def _answered_questions(
            self, session_id: id_types.ChatSessionId
        ) -> tuple[QuestionRequest, ...]: ...
        async def get_user(self, user_id: id_types.UserId) -> User: ...

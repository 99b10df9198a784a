"""Chat sessions, their messages, the chunks replies stream in, and permission requests.

A user message is ``pending`` until the machine claims it (``processing``) and
``completed`` once its reply ends (whatever the reply's outcome). The reply is
an assistant message created by the claim in ``streaming``; it ends exactly
once as ``completed``, ``failed``, ``interrupted`` (the machine died mid-reply)
or ``aborted`` (the user pressed Stop). Chunks carry a per-session sequence
that only grows, so a reader that reconnects asks for "everything after N".
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from orchestrator.domain.errors import InvalidInput, PayloadTooLarge
from orchestrator.domain.ids import (
    ChatSessionId,
    ChunkId,
    MessageId,
    PermissionId,
    UserId,
    WorkerId,
)

MAX_MESSAGE_LENGTH = 100_000
MAX_CHUNK_LENGTH = 64_000
MAX_REASON_LENGTH = 2_000


class ChatSessionStatus(enum.StrEnum):
    ACTIVE = "active"
    IDLE = "idle"
    TERMINATED = "terminated"


class MessageRole(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    STREAMING = "streaming"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {
        MessageStatus.COMPLETED,
        MessageStatus.FAILED,
        MessageStatus.INTERRUPTED,
        MessageStatus.ABORTED,
    }
)

#: How a reply may end; the machine reports one of these.
REPLY_ENDINGS = frozenset({MessageStatus.FAILED, MessageStatus.INTERRUPTED, MessageStatus.ABORTED})


class PermissionAnswer(enum.StrEnum):
    ONCE = "once"
    ALWAYS = "always"
    REJECT = "reject"


class PermissionStatus(enum.StrEnum):
    PENDING = "pending"  # asked by the agent, waiting for the user
    ANSWERED = "answered"  # the user answered; the machine has yet to pass it on
    RESOLVED = "resolved"  # passed on to the agent
    EXPIRED = "expired"  # the reply ended before an answer arrived


@attrs.frozen
class ChatSession:
    chat_session_id: ChatSessionId
    worker_id: WorkerId
    user_id: UserId
    model: str
    status: ChatSessionStatus
    created_at: datetime
    last_activity: datetime
    agent_session_id: str | None = None
    title: str | None = None


@attrs.frozen
class ChatMessage:
    message_id: MessageId
    chat_session_id: ChatSessionId
    role: MessageRole
    content: str
    status: MessageStatus
    timestamp: datetime
    #: For an assistant message: the user message it answers.
    reply_to: MessageId | None = None
    #: Why a reply failed, was interrupted or aborted.
    error: str | None = None
    #: The user asked to stop this reply; the machine has not acted yet.
    abort_requested: bool = False

    @property
    def completed(self) -> bool:
        return self.status.finished


@attrs.frozen
class ChatChunk:
    chunk_id: ChunkId
    message_id: MessageId
    chat_session_id: ChatSessionId
    chunk: str
    sequence: int
    timestamp: datetime


@attrs.frozen
class PermissionRequest:
    permission_id: PermissionId
    chat_session_id: ChatSessionId
    message_id: MessageId
    #: The agent's own ID for the request (opencode's ``requestID``).
    agent_request_id: str
    tool: str
    description: str
    status: PermissionStatus
    created_at: datetime
    answer: PermissionAnswer | None = None


@attrs.frozen
class SessionWork:
    """What a machine must act on for one non-terminated session of its workers."""

    session: ChatSession
    #: User messages not yet claimed, oldest first.
    pending_messages: tuple[ChatMessage, ...] = ()
    #: The reply being streamed, if any (after a restart: the one to mark interrupted).
    streaming_reply: ChatMessage | None = None
    #: Permission requests the user answered that the agent has not been told about.
    answered_permissions: tuple[PermissionRequest, ...] = ()


def validate_message(content: str) -> str:
    """Return ``content`` if it is a sendable message: not blank, not oversized."""
    if not content.strip():
        raise InvalidInput("A message must not be empty.")
    if len(content) > MAX_MESSAGE_LENGTH:
        raise PayloadTooLarge(f"A message must be at most {MAX_MESSAGE_LENGTH} characters.")
    return content

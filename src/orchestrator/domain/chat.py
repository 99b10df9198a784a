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

from orchestrator.domain.diffs import MAX_DIFF_BYTES
from orchestrator.domain.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    PayloadTooLarge,
)
from orchestrator.domain.ids import (
    ChatSessionId,
    ChunkId,
    MessageId,
    PermissionId,
    UserId,
    WorkerId,
)
from orchestrator.domain.model import Worker, WorkerStatus
from orchestrator.domain.questions import QuestionRequest
from orchestrator.domain.request_status import RequestStatus
from orchestrator.domain.text import bounded

MAX_MESSAGE_LENGTH = 100_000
MAX_CHUNK_LENGTH = 64_000
MAX_REASON_LENGTH = 2_000
#: A whole reply, written once when it completes.
MAX_REPLY_LENGTH = 1_000_000
MAX_TITLE_LENGTH = 200
#: The agent's own session and permission-request IDs.
MAX_AGENT_ID_LENGTH = 200
#: The tool name and description of a permission request.
MAX_PERMISSION_TEXT_LENGTH = 10_000
#: The largest diff size a permission request may state (exact in a JavaScript number).
MAX_DIFF_SIZE = 2**53 - 1

SESSION_ENDED = "This session has ended. Restore it to continue."


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


#: A permission request lives as a question does (see ``domain.request_status``).
PermissionStatus = RequestStatus


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
    #: The agent (mode) its messages use unless a message names another.
    agent: str | None = None
    #: The first reply undone (it and every later one), None when nothing is (domain.undo).
    undone_from: MessageId | None = None
    #: The agent's ID of that reply's turn, which the machine reverts to.
    undo_agent_id: str | None = None
    #: When the undo was asked for: messages sent later are not undone.
    undone_at: datetime | None = None
    #: Undo/redo requests made, and how many of them the machine has carried out.
    undo_requests: int = 0
    undo_applied: int = 0
    #: Why the last undo or redo failed.
    undo_error: str | None = None

    @property
    def undo_pending(self) -> bool:
        return self.undo_applied < self.undo_requests


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
    #: For a user message: the agent (mode) it was sent to, when the user chose one.
    agent: str | None = None
    #: For a reply: the model that produced it (its session's model when it was claimed).
    model: str | None = None

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
    #: The text part it grows and where in it the text goes (None for chunks without a part).
    part_id: str | None = None
    offset: int | None = None


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
    #: The file an ``edit`` would change and its unified diff, cut to :data:`MAX_DIFF_BYTES`
    #: ("" for other tools); ``diff_size`` is the whole diff's UTF-8 bytes.
    file: str = ""
    diff: str = ""
    diff_size: int = 0


@attrs.frozen
class SessionUpdate:
    """What a machine changes on a session: active/idle, the agent's session ID, a first title."""

    status: ChatSessionStatus | None = None
    agent_session_id: str | None = None
    title: str | None = None


@attrs.frozen
class SessionWork:
    """What a machine must act on for one session of its workers.

    Every non-terminated session is listed (so the machine can apply idle
    timeouts), and a terminated one while a reply of it is still streaming (so
    the machine stops and ends that reply).
    """

    session: ChatSession
    #: User messages not yet claimed, oldest first.
    pending_messages: tuple[ChatMessage, ...] = ()
    #: The reply being streamed, if any (after a restart: the one to mark interrupted).
    streaming_reply: ChatMessage | None = None
    #: Permission requests the user answered that the agent has not been told about.
    answered_permissions: tuple[PermissionRequest, ...] = ()
    #: Questions the user answered or dismissed that the agent has not been told about.
    answered_questions: tuple[QuestionRequest, ...] = ()


def validate_message(content: str) -> str:
    """Return ``content`` if it is a sendable message: not blank, not oversized."""
    return bounded(content, MAX_MESSAGE_LENGTH, "A message")


def job_session_title(job_name: str) -> str | None:
    """The title of a session a job opens: the job's name, within the title's bound."""
    return job_name.strip()[:MAX_TITLE_LENGTH] or None


def validate_title(title: str) -> str:
    """A session title the user chose: not blank, at most MAX_TITLE_LENGTH characters, trimmed."""
    return bounded(title, MAX_TITLE_LENGTH, "A title").strip()


def check_runnable(worker: Worker) -> None:
    """Refuse new work for ``worker`` while its machine cannot run it, saying why."""
    if worker.problem is not None:
        raise Conflict(worker.problem)


def check_model(worker: Worker, model: str) -> str:
    """Return ``model`` if a session may start on ``worker`` with it."""
    if worker.status is WorkerStatus.PENDING_AUTHORIZATION:
        raise Conflict("This worker is waiting for approval. Approve it before starting a session.")
    if not worker.models:
        raise InvalidInput(
            "The worker's models are not known yet because its machine has not reported them."
            " Start the machine and try again."
        )
    if model not in worker.models:
        raise InvalidInput(
            f"The worker does not offer model {model}. Pick one of: {', '.join(worker.models)}."
        )
    return model


def check_agent(worker: Worker, agent: str | None) -> str | None:
    """Return ``agent`` if the worker offers it (None: the agent's own default)."""
    if agent is None:
        return None
    if agent not in worker.agents:
        offered = ", ".join(worker.agents) or "none reported yet"
        raise InvalidInput(f"The worker does not offer agent {agent[:80]}. Pick one of: {offered}.")
    return agent


def validate_chunk(text: str) -> str:
    """Return ``text`` if it is a streamable chunk: not empty, not oversized."""
    if not text:
        raise InvalidInput("A chunk must not be empty.")
    if len(text) > MAX_CHUNK_LENGTH:
        raise PayloadTooLarge(f"A chunk must be at most {MAX_CHUNK_LENGTH} characters.")
    return text


def validate_reply(content: str) -> str:
    """Return the whole text of a reply if it is not oversized (it may be empty)."""
    if len(content) > MAX_REPLY_LENGTH:
        raise PayloadTooLarge(f"A reply must be at most {MAX_REPLY_LENGTH} characters.")
    return content


def validate_ending(status: MessageStatus, reason: str) -> tuple[MessageStatus, str]:
    """Check how a reply ends: one of :data:`REPLY_ENDINGS` and a bounded reason."""
    if status not in REPLY_ENDINGS:
        raise InvalidInput("A reply can only end as failed, interrupted or aborted.")
    if len(reason) > MAX_REASON_LENGTH:
        raise PayloadTooLarge(f"The reason must be at most {MAX_REASON_LENGTH} characters.")
    return MessageStatus(status), reason


def validate_session_update(
    status: ChatSessionStatus | None, agent_session_id: str | None, title: str | None
) -> tuple[ChatSessionStatus | None, str | None, str | None]:
    """Check what a machine may change on a session: active/idle, agent session ID, title."""
    if status is ChatSessionStatus.TERMINATED:
        raise InvalidTransition("Only the owner of a session can end it.")
    if agent_session_id is not None:
        bounded(agent_session_id, MAX_AGENT_ID_LENGTH, "The agent session ID")
    if title is not None:
        title = bounded(title, MAX_TITLE_LENGTH, "A title").strip()
    return status, agent_session_id, title


def validate_permission_request(
    agent_request_id: str, tool: str, description: str
) -> tuple[str, str, str]:
    """Check the agent's request ID, tool name and description are present and bounded."""
    return (
        bounded(agent_request_id, MAX_AGENT_ID_LENGTH, "The agent request ID"),
        bounded(tool, MAX_PERMISSION_TEXT_LENGTH, "The tool name"),
        bounded(description, MAX_PERMISSION_TEXT_LENGTH, "The description"),
    )


def validate_permission_edit(file: str, diff: str, diff_size: int) -> tuple[str, str, int]:
    """Check an edit request's file and diff are bounded and its diff size counts the diff."""
    if len(file) > MAX_PERMISSION_TEXT_LENGTH:
        raise PayloadTooLarge(
            f"The file path must be at most {MAX_PERMISSION_TEXT_LENGTH} characters."
        )
    kept = len(diff.encode("utf-8", "surrogatepass"))  # as JavaScript's TextEncoder counts
    if kept > MAX_DIFF_BYTES:
        raise PayloadTooLarge(
            f"The diff must be at most {MAX_DIFF_BYTES} bytes; send its start and its full size."
        )
    if not kept <= diff_size <= MAX_DIFF_SIZE:
        raise InvalidInput("The diff size must count the bytes of the whole diff.")
    return file, diff, diff_size


def ensure_open(session: ChatSession) -> ChatSession:
    """Return ``session`` unless it has ended."""
    if session.status is ChatSessionStatus.TERMINATED:
        raise Conflict(SESSION_ENDED)
    return session


def ensure_streaming(message: ChatMessage) -> ChatMessage:
    """Return ``message`` if it is a reply still being streamed."""
    if message.role is not MessageRole.ASSISTANT:
        raise Conflict("That message is not a reply.")
    if message.status is not MessageStatus.STREAMING:
        raise Conflict("This reply has already ended.")
    return message


MESSAGE_NOT_QUEUED = "This message is no longer queued: the agent has already received it."


def ensure_queued(message: ChatMessage) -> ChatMessage:
    """Return ``message`` if its sender may still edit or cancel it: not yet claimed."""
    if message.role is not MessageRole.USER or message.status is not MessageStatus.PENDING:
        raise Conflict(MESSAGE_NOT_QUEUED)
    return message


def ensure_claimable(
    message: ChatMessage,
    session: ChatSession,
    streaming: ChatMessage | None,
    oldest_pending: MessageId | None,
) -> ChatMessage:
    """Return ``message`` if the machine may claim it now: each message once, in order."""
    if message.role is not MessageRole.USER or message.status is not MessageStatus.PENDING:
        raise Conflict("This message has already been claimed.")
    ensure_open(session)
    if streaming is not None:
        raise Conflict("A reply of this session is still streaming. End it first.")
    if oldest_pending != message.message_id:
        raise Conflict("An older message of this session must be claimed first.")
    return message


#: Why a reply of a machine that went away ended (its text so far is kept).
GONE_REASON = "The machine went offline while this reply was being written."

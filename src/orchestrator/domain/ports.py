"""The boundaries of the orchestrator, as ``typing.Protocol``s.

The backend is seen from two sides and so has two ports:

* :class:`MachineBackend` -- what a machine process may do, every call
  authenticated by its :class:`~orchestrator.domain.ids.MachineToken`;
* :class:`UserBackend` -- what the web server may do on behalf of a signed-in
  user, every call scoped to that user's records (someone else's IDs raise
  :class:`~orchestrator.domain.errors.NotFound`).

:class:`AccountBackend` stores accounts for the web server. Rules that must
hold atomically (ownership, status transitions, single use of worker tokens)
live behind these ports, so the embedded and the Convex backend enforce them
the same way; the contract suite in ``tests/contract`` proves it.

Subscriptions (``watch_*``) are async iterators that yield the current result
at once and again each time it changes, like Convex's ``subscribe``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.api_tokens import ApiToken
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    MessageStatus,
    PermissionAnswer,
    PermissionRequest,
    SessionUpdate,
    SessionWork,
)
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandOutcome,
)
from orchestrator.domain.ids import (
    ApiTokenId,
    ChatSessionId,
    CommandId,
    JobId,
    MachineId,
    MachineToken,
    MessageId,
    PermissionId,
    QuestionId,
    UserId,
    WorkerId,
    WorkerToken,
)
from orchestrator.domain.jobs import Job, JobDraft, JobRun
from orchestrator.domain.lease import Lease
from orchestrator.domain.live import LiveEvent, ReplyState, SequencedEvent
from orchestrator.domain.model import Machine, MachineSummary, User, Worker
from orchestrator.domain.notifications import (
    FinishedReply,
    NotificationSettings,
    OpenTurn,
    PushSubscription,
    SubscriptionDraft,
    WaitingPermission,
)
from orchestrator.domain.paging import Page
from orchestrator.domain.parts import (
    MessagePart,
    PartBody,
    StreamEvent,
    TextAppend,
    TextAppended,
)
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy
from orchestrator.domain.questions import Answers, QuestionRequest, WaitingQuestion
from orchestrator.domain.replies import PermissionAsk, QuestionAsk


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self, kind: str) -> str:
        """A fresh unique ID for a record of ``kind`` (a key of ``ids.PREFIXES``)."""
        ...

    def new_secret(self) -> str:
        """A fresh secret with at least 256 bits of entropy."""
        ...


class SecretHasher(Protocol):
    def hash(self, secret: str) -> str:
        """A slow, salted hash of ``secret`` fit to store at rest."""
        ...

    def verify(self, hashed: str, secret: str) -> bool:
        """Whether ``secret`` matches ``hashed``, compared in constant time."""
        ...


class MachineBackend(Protocol):
    """The backend as a machine process sees it."""

    async def authenticate(self, token: MachineToken) -> Machine:
        """The machine the token belongs to; raises AuthenticationFailed if wrong."""
        ...

    async def go_online(
        self, token: MachineToken, root_directory: str, lease: Lease | None = None
    ) -> Machine:
        """Mark the machine online and record its root directory and heartbeat.

        A machine process calls this once when it starts, so the same write
        recovers the commands a dead process left ``running`` (see
        :func:`orchestrator.domain.commands.recover`). With a ``lease`` it also
        claims the machine for that process (MachineInUse if another holds it;
        see :mod:`orchestrator.domain.lease`).
        """
        ...

    async def heartbeat(self, token: MachineToken, lease: Lease | None = None) -> Machine:
        """Record that the machine is alive (and online); renew ``lease`` (MachineInUse if lost)."""
        ...

    async def go_offline(self, token: MachineToken, lease: Lease | None = None) -> None:
        """Mark the machine and all its workers offline (only the lease's holder may)."""
        ...

    async def list_own_workers(self, token: MachineToken) -> list[Worker]:
        """Every worker of this machine, pending ones included."""
        ...

    async def register_worker(
        self, token: MachineToken, worker_token: WorkerToken, directory: str, name: str | None
    ) -> Worker:
        """Create a worker from an issued worker token; it waits for approval."""
        ...

    async def worker_heartbeat(self, token: MachineToken, worker_id: WorkerId) -> Worker:
        """Mark an approved worker online and record its heartbeat."""
        ...

    async def worker_offline(
        self, token: MachineToken, worker_id: WorkerId, problem: str | None = None
    ) -> Worker:
        """Mark an approved worker offline; ``problem`` says why the machine cannot run it."""
        ...

    async def update_worker_models(
        self, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
    ) -> Worker:
        """Replace the list of models the worker's agent offers."""
        ...

    async def update_worker_agents(
        self, token: MachineToken, worker_id: WorkerId, catalog: AgentCatalog
    ) -> Worker:
        """Replace the agents (modes) and slash commands the worker's agent offers."""
        ...

    def watch_own_workers(self, token: MachineToken) -> AsyncIterator[list[Worker]]:
        """The machine's workers, now and after every change."""
        ...


class UserBackend(Protocol):
    """The backend as the web server sees it on behalf of a signed-in user."""

    async def create_machine(self, user: UserId, name: str) -> tuple[Machine, MachineToken]:
        """Create an offline machine; the token (with its secret) is returned only here."""
        ...

    async def list_machines(self, user: UserId) -> list[MachineSummary]:
        """The user's machines, oldest first, with worker counts by status."""
        ...

    async def list_machines_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[MachineSummary]:
        """One page of the user's machines, oldest first (at most ``MACHINE_PAGE``)."""
        ...

    async def get_machine(self, user: UserId, machine_id: MachineId) -> Machine:
        """One of the user's machines."""
        ...

    async def delete_machine(self, user: UserId, machine_id: MachineId) -> None:
        """Delete a machine and its workers; its token stops working at once."""
        ...

    async def add_worker(
        self,
        user: UserId,
        machine_id: MachineId,
        directory: str,
        name: str | None,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> Worker:
        """Add an approved (``ready``) worker on a directory relative to the machine's root."""
        ...

    async def set_worker_permission_policy(
        self, user: UserId, worker_id: WorkerId, permission_policy: PermissionPolicy
    ) -> Worker:
        """Change what the worker's agent may do; its next opencode start uses it."""
        ...

    async def issue_worker_token(self, user: UserId, machine_id: MachineId) -> WorkerToken:
        """A single-use token the machine can register a worker with."""
        ...

    async def approve_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        """Approve a pending worker; it becomes ``ready``."""
        ...

    async def reject_worker(self, user: UserId, worker_id: WorkerId) -> None:
        """Refuse a pending worker; it is deleted and its token stays used."""
        ...

    async def remove_worker(self, user: UserId, worker_id: WorkerId) -> None:
        """Delete a worker in any status."""
        ...

    async def get_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        """One of the user's workers ("No such worker." for anyone else's)."""
        ...

    async def list_workers(self, user: UserId, machine_id: MachineId) -> list[Worker]:
        """The workers of one of the user's machines, oldest first."""
        ...

    async def list_pending_workers(self, user: UserId) -> list[Worker]:
        """Workers waiting for approval across all the user's machines."""
        ...

    def watch_machines(self, user: UserId) -> AsyncIterator[list[MachineSummary]]:
        """The user's machines, now and after every change."""
        ...

    def watch_workers(self, user: UserId, machine_id: MachineId) -> AsyncIterator[list[Worker]]:
        """The workers of one machine, now and after every change."""
        ...


class AccountBackend(Protocol):
    """Accounts of the web app; passwords arrive already hashed."""

    async def create_user(self, username: str, password_hash: str) -> User:
        """Create an account; raises Conflict if the username is taken."""
        ...

    async def find_user(self, username: str) -> tuple[User, str] | None:
        """The account and its password hash, or None if there is no such user."""
        ...

    async def get_user(self, user_id: UserId) -> User:
        """An account by ID; raises NotFound."""
        ...

    async def count_users(self) -> int:
        """How many accounts exist (zero means first run)."""
        ...

    async def list_users(self) -> list[User]:
        """Every account, oldest first (the first is the one the setup link created)."""
        ...

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        """Replace the account's password hash; raises NotFound."""
        ...

    async def add_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        """Record a browser's sign-in; beyond MAX_SIGN_INS_PER_USER the oldest ones end."""
        ...

    async def has_sign_in(self, user_id: UserId, sign_in_id: str) -> bool:
        """Whether this sign-in of the user exists and has not ended."""
        ...

    async def end_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        """End one sign-in of the user (signing out); an unknown one is already ended."""
        ...

    async def end_other_sign_ins(self, user_id: UserId, keep: str | None) -> int:
        """End every sign-in of the user except ``keep``; how many ended."""
        ...


class ApiTokenBackend(Protocol):
    """User API tokens (see ``domain.api_tokens``): only the SHA-256 of a secret is stored."""

    async def create_api_token(self, user: UserId, name: str) -> tuple[ApiToken, str]:
        """A new token named ``name`` and its text ``oat_<id>:sec_<secret>``, shown once."""
        ...

    async def list_api_tokens(self, user: UserId) -> list[ApiToken]:
        """The user's tokens, oldest first."""
        ...

    async def revoke_api_token(self, user: UserId, token_id: ApiTokenId) -> None:
        """Delete one of the user's tokens; NotFound for an unknown or another user's."""
        ...

    async def authenticate_api_token(self, token: str) -> UserId:
        """Whose token this is (noting its use); InvalidToken or AuthenticationFailed."""
        ...


class MaintenanceBackend(Protocol):
    """Housekeeping only the server itself performs."""

    async def mark_stale_machines_offline(self, last_seen_before: datetime) -> list[MachineId]:
        """Silent machines go offline with their workers; their replies end interrupted."""
        ...


class ChatUserBackend(Protocol):
    """Chat sessions as their owner sees them; another user's session is NotFound."""

    async def start_session(
        self, user: UserId, worker_id: WorkerId, model: str, agent: str | None = None
    ) -> ChatSession:
        """Open an ``active`` session on a worker with one of its models (and agents)."""
        ...

    async def end_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        """Terminate a session for good; a streaming reply is asked to stop."""
        ...

    async def restore_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        """Reopen a terminated session as ``idle``; its next message resumes its history."""
        ...

    async def get_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        """One of the user's sessions."""
        ...

    async def list_sessions(self, user: UserId, worker_id: WorkerId) -> list[ChatSession]:
        """A worker's sessions: active and idle first, then terminated; newest activity first."""
        ...

    async def list_sessions_page(
        self, user: UserId, worker_id: WorkerId, cursor: str | None = None, limit: int | None = None
    ) -> Page[ChatSession]:
        """One page of a worker's sessions, in the order of :meth:`list_sessions`."""
        ...

    async def send_message(
        self, user: UserId, session_id: ChatSessionId, content: str, agent: str | None = None
    ) -> ChatMessage:
        """Queue a user message (``pending``), for one of the worker's agents if named."""
        ...

    async def edit_message(self, user: UserId, message_id: MessageId, content: str) -> ChatMessage:
        """Change the text of one of the user's queued messages before the machine claims it."""
        ...

    async def cancel_message(self, user: UserId, message_id: MessageId) -> None:
        """Delete one of the user's queued messages before the machine claims it."""
        ...

    async def list_messages(self, user: UserId, session_id: ChatSessionId) -> list[ChatMessage]:
        """The session's messages, oldest first."""
        ...

    async def list_messages_page(
        self,
        user: UserId,
        session_id: ChatSessionId,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[ChatMessage]:
        """One page of the session's messages, newest first (see :mod:`~.paging`)."""
        ...

    async def request_abort(self, user: UserId, session_id: ChatSessionId) -> ChatMessage | None:
        """Ask the machine to stop the reply being streamed; None if nothing is streaming."""
        ...

    async def rename_session(
        self, user: UserId, session_id: ChatSessionId, title: str
    ) -> ChatSession:
        """Give one of the user's sessions a title (bounded; InvalidInput/PayloadTooLarge)."""
        ...

    async def undo_turn(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId
    ) -> ChatSession:
        """Ask the machine to undo a finished reply and every later one (domain.undo)."""
        ...

    async def redo_turns(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        """Ask the machine to redo what is undone in the session (Conflict if nothing is)."""
        ...

    async def list_permissions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[PermissionRequest]:
        """Permission requests of the session waiting for an answer (or all, oldest first)."""
        ...

    async def answer_permission(
        self, user: UserId, permission_id: PermissionId, answer: PermissionAnswer
    ) -> PermissionRequest:
        """Answer a pending request; Conflict if it was already answered or expired."""
        ...

    async def list_questions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[QuestionRequest]:
        """Questions of the session waiting for an answer (or all, oldest first)."""
        ...

    async def answer_question(
        self, user: UserId, question_id: QuestionId, answers: Answers | None
    ) -> QuestionRequest:
        """Answer a pending question (None: dismiss it); Conflict once answered or expired."""
        ...

    def watch_requests(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncIterator[tuple[list[PermissionRequest], list[QuestionRequest]]]:
        """Every permission request and question of the session, now and after every change."""
        ...

    async def list_parts(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId | None = None
    ) -> list[MessagePart]:
        """The parts of the session's replies (or of one reply), in the order they were made."""
        ...

    def watch_events(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncIterator[list[StreamEvent]]:
        """Chunks, and parts other than text, changed after ``after_sequence``, in order.

        Read as one snapshot, so a reader that resumes from the last sequence it
        saw misses nothing; a part replaced later comes again under its new sequence.
        """
        ...

    def watch_sessions(self, user: UserId, worker_id: WorkerId) -> AsyncIterator[list[ChatSession]]:
        """A worker's sessions, now and after every change."""
        ...

    def watch_messages(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncIterator[list[ChatMessage]]:
        """The session's newest page of messages, oldest first, now and after every change."""
        ...

    def watch_chunks(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncIterator[list[ChatChunk]]:
        """Chunks with a sequence above ``after_sequence``, in order, each exactly once."""
        ...


class ChatMachineBackend(Protocol):
    """Chat sessions as the machine that runs their workers sees them."""

    def watch_work(self, token: MachineToken) -> AsyncIterator[list[SessionWork]]:
        """Every open session of the machine's workers (and an ended one whose reply streams)."""
        ...

    async def list_session_messages(
        self, token: MachineToken, session_id: ChatSessionId
    ) -> list[ChatMessage]:
        """A session's messages (history for an agent that lost its own)."""
        ...

    async def claim_message(self, token: MachineToken, message_id: MessageId) -> ChatMessage:
        """Take a pending user message; returns the new ``streaming`` assistant reply."""
        ...

    async def append_chunk(
        self, token: MachineToken, message_id: MessageId, text: str
    ) -> ChatChunk:
        """Add streamed text to a reply; the backend assigns the next session sequence."""
        ...

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        """Store a part of a streaming reply whole: created, or replaced as it moves."""
        ...

    async def append_part_text(
        self, token: MachineToken, message_id: MessageId, delta: TextAppend
    ) -> TextAppended:
        """Grow a text/reasoning part at ``offset`` (TextGap past its end; stored text skipped).

        New text of a ``text`` part is also streamed as a chunk, in the same write.
        """
        ...

    async def complete_message(
        self, token: MachineToken, message_id: MessageId, content: str
    ) -> ChatMessage:
        """End a reply successfully with its whole text (written once)."""
        ...

    async def end_reply(
        self, token: MachineToken, message_id: MessageId, status: MessageStatus, reason: str
    ) -> ChatMessage:
        """End a reply as failed, interrupted or aborted, keeping the text streamed so far."""
        ...

    async def update_session(
        self, token: MachineToken, session_id: ChatSessionId, update: SessionUpdate
    ) -> ChatSession:
        """Record the agent's session ID, a title (if the session has none yet), or active/idle."""
        ...

    async def report_undo(
        self, token: MachineToken, session_id: ChatSessionId, applied: int, error: str | None
    ) -> ChatSession:
        """The undo/redo requests up to ``applied`` are carried out (or failed with ``error``)."""
        ...

    async def record_permission(
        self, token: MachineToken, message_id: MessageId, ask: PermissionAsk
    ) -> PermissionRequest:
        """The agent asks permission during a reply (an edit with its file and diff); it waits."""
        ...

    async def resolve_permission(
        self, token: MachineToken, permission_id: PermissionId
    ) -> PermissionRequest:
        """The answer was passed on to the agent."""
        ...

    async def record_question(
        self, token: MachineToken, message_id: MessageId, ask: QuestionAsk
    ) -> QuestionRequest:
        """The agent asks the user questions during a reply; the user sees them as pending."""
        ...

    async def resolve_question(
        self, token: MachineToken, question_id: QuestionId
    ) -> QuestionRequest:
        """The answer (or dismissal) was passed on to the agent."""
        ...


class CommandUserBackend(Protocol):
    """Directory commands as their owner sees them; others' machines and commands are NotFound."""

    async def create_command(
        self, user: UserId, machine_id: MachineId, kind: CommandKind, arguments: CommandArguments
    ) -> Command:
        """Queue a ``pending`` command for one of the user's machines, online or not."""
        ...

    async def get_command(self, user: UserId, command_id: CommandId) -> Command:
        """One of the user's commands."""
        ...

    async def list_commands(self, user: UserId, machine_id: MachineId) -> list[Command]:
        """The machine's latest commands, newest first (at most ``LIST_COMMANDS_LIMIT``)."""
        ...

    async def cancel_command(self, user: UserId, command_id: CommandId) -> Command:
        """Fail a pending command at once, or ask the machine to stop a running one."""
        ...

    def watch_command(self, user: UserId, command_id: CommandId) -> AsyncIterator[Command]:
        """One command, now and after every change (status, progress, result)."""
        ...


class CommandMachineBackend(Protocol):
    """Directory commands as the machine that runs them sees them."""

    def watch_commands(self, token: MachineToken) -> AsyncIterator[list[Command]]:
        """The machine's pending and running commands, oldest first, now and after every change."""
        ...

    async def claim_command(self, token: MachineToken, command_id: CommandId) -> Command:
        """Take a pending command: it becomes ``running``; Conflict if it was already taken."""
        ...

    async def report_progress(
        self, token: MachineToken, command_id: CommandId, progress: int, line: str
    ) -> Command:
        """Record how far a running command got (0-100) and the line that said so."""
        ...

    async def finish_command(
        self, token: MachineToken, command_id: CommandId, outcome: CommandOutcome
    ) -> Command:
        """End a running command: ``done`` with its result, or ``failed`` with one sentence."""
        ...


class JobUserBackend(Protocol):
    """Scheduled jobs as their owner sees them; another user's job is NotFound.

    ``next_run_at`` is computed by the caller (``application.jobs``) from the
    cron expression, so no backend needs a cron parser; None means paused.
    """

    async def create_job(self, user: UserId, draft: JobDraft, next_run_at: datetime | None) -> Job:
        """Store a job for one of the user's approved workers (model among its models)."""
        ...

    async def update_job(
        self, user: UserId, job_id: JobId, draft: JobDraft, next_run_at: datetime | None
    ) -> Job:
        """Replace a job's settings; clears a pause reason."""
        ...

    async def set_job_enabled(
        self, user: UserId, job_id: JobId, enabled: bool, next_run_at: datetime | None
    ) -> Job:
        """Pause (``next_run_at`` None) or resume a job."""
        ...

    async def delete_job(self, user: UserId, job_id: JobId) -> None:
        """Delete a job and its run history (the chat sessions it produced stay)."""
        ...

    async def get_job(self, user: UserId, job_id: JobId) -> Job:
        """One of the user's jobs."""
        ...

    async def list_jobs(self, user: UserId) -> list[Job]:
        """The user's jobs, oldest first."""
        ...

    async def list_jobs_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[Job]:
        """One page of the user's jobs, oldest first."""
        ...

    async def list_job_runs(self, user: UserId, job_id: JobId, limit: int = 50) -> list[JobRun]:
        """A job's runs, newest first; each run's status is its reply's."""
        ...

    async def run_job_now(self, user: UserId, job_id: JobId) -> JobRun:
        """Start a run at once ("Run now"), leaving the schedule as it is."""
        ...

    def watch_jobs(self, user: UserId) -> AsyncIterator[list[Job]]:
        """The user's jobs, now and after every change."""
        ...


class JobSchedulerBackend(Protocol):
    """What the scheduler in ``orchestrator serve`` asks of the backend."""

    async def list_due_jobs(self, now: datetime, limit: int = 100) -> list[Job]:
        """Enabled jobs whose ``next_run_at`` is at or before ``now``, soonest first."""
        ...

    async def start_job_run(
        self, job_id: JobId, scheduled_for: datetime, next_run_at: datetime | None
    ) -> JobRun | None:
        """Run the job's slot ``scheduled_for`` exactly once, then move it to ``next_run_at``.

        Atomic compare-and-set: only if the job is enabled and its ``next_run_at``
        still equals ``scheduled_for``; otherwise (another scheduler got there
        first, or the job changed) None and nothing is written. The run sends
        the job's prompt as a user message to a new session or the job's session.
        """
        ...


class NotificationBackend(Protocol):
    """Push subscriptions and notification settings per user, and what waits for users."""

    async def save_push_subscription(
        self, user: UserId, draft: SubscriptionDraft
    ) -> PushSubscription:
        """Store (or renew, by endpoint) a browser's subscription for ``user``."""
        ...

    async def delete_push_subscription(self, user: UserId, endpoint: str) -> None:
        """Forget one of the user's subscriptions; NotFound if it is not theirs."""
        ...

    async def list_push_subscriptions(self, user: UserId) -> list[PushSubscription]:
        """The user's subscriptions, oldest first."""
        ...

    async def drop_push_subscription(self, endpoint: str) -> None:
        """Forget a subscription the push service says is gone (404/410); idempotent."""
        ...

    async def get_notification_settings(self, user: UserId) -> NotificationSettings:
        """The user's settings (the defaults until they saved some)."""
        ...

    async def save_notification_settings(
        self, user: UserId, settings: NotificationSettings
    ) -> NotificationSettings:
        """Replace the user's settings."""
        ...

    async def list_waiting_permissions(self, user: UserId | None) -> list[WaitingPermission]:
        """Pending permission requests of ``user`` (None: of every user), oldest first."""
        ...

    def watch_waiting_permissions(
        self, user: UserId | None
    ) -> AsyncIterator[list[WaitingPermission]]:
        """Pending permission requests, now and after every change."""
        ...

    async def list_waiting_questions(self, user: UserId | None) -> list[WaitingQuestion]:
        """Pending questions of ``user`` (None: of every user), oldest first."""
        ...

    def watch_waiting_questions(self, user: UserId | None) -> AsyncIterator[list[WaitingQuestion]]:
        """Pending questions, now and after every change."""
        ...

    async def list_finished_replies(self, user: UserId, limit: int) -> list[FinishedReply]:
        """The user's replies that ended (INBOX_ENDINGS) after their inbox mark, newest first."""
        ...

    def watch_finished_replies(
        self, user: UserId, limit: int
    ) -> AsyncIterator[list[FinishedReply]]:
        """The user's finished replies since their mark, now and after every change."""
        ...

    async def mark_inbox_seen(self, user: UserId, until: datetime) -> None:
        """Move the user's inbox mark to ``until`` (forward only, never past now)."""
        ...

    async def list_open_turns(self) -> list[OpenTurn]:
        """Every unfinished message of every user, with its machine's status, oldest first."""
        ...

    def watch_open_turns(self) -> AsyncIterator[list[OpenTurn]]:
        """Unfinished messages, now and after every change (and every machine status change)."""
        ...


class ServerBackend(
    UserBackend,
    ChatUserBackend,
    CommandUserBackend,
    JobUserBackend,
    JobSchedulerBackend,
    NotificationBackend,
    AccountBackend,
    ApiTokenBackend,
    MaintenanceBackend,
    Protocol,
):
    """Everything the web server needs from a backend."""


class Backend(ServerBackend, MachineBackend, ChatMachineBackend, CommandMachineBackend, Protocol):
    """A complete backend: the embedded one and the Convex one implement this."""

    async def close(self) -> None:
        """Release connections and stop background tasks."""
        ...


class MachineSide(MachineBackend, ChatMachineBackend, CommandMachineBackend, Protocol):
    """Everything a machine process needs: the embedded backend, the remote client, Convex."""


@runtime_checkable
class LiveEventStore(Protocol):
    """Durable half of the live relay: a server-side backend that stores numbered events."""

    async def reply_state(
        self, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> ReplyState:
        """The machine's streaming reply in that session with its parts; refused otherwise."""
        ...

    async def last_sequence(self, session_id: ChatSessionId) -> int:
        """The highest sequence stored for the session (0 if none)."""
        ...

    async def store_events(self, token: MachineToken, events: Sequence[SequencedEvent]) -> None:
        """Store events in one write under the sequences they carry; re-sent text adds nothing."""
        ...


class LiveSink(Protocol):
    """Where a machine sends live events: to its server at once, kept until stored."""

    async def run(self) -> None:
        """Keep the connection up and re-send what is not yet stored after each reconnect."""
        ...

    async def send(self, event: LiveEvent) -> None:
        """Send one event now (it is kept until the server says it is stored)."""
        ...

    async def drain(self, session_id: ChatSessionId) -> None:
        """Until every event sent for the session is stored."""
        ...

    def forget(self, message_id: MessageId) -> None:
        """Drop what is kept of a reply that ended and is stored (its text for gap repairs)."""
        ...

"""What travels between the adapter and the Convex functions: records, and refusals.

Records arrive as the objects ``backend_convex/convex/lib/validators.ts``
describes: camelCased fields, ``null`` for an absent value, every number a
float (Convex numbers are IEEE doubles) and every timestamp milliseconds since
the epoch. Refusals arrive as ``ConvexError`` data ``{"kind", "message"}``
whose kind names a class of :mod:`orchestrator.domain.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from orchestrator.domain import errors
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    MessageRole,
    MessageStatus,
    PermissionAnswer,
    PermissionRequest,
    PermissionStatus,
    SessionWork,
)
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandResult,
    CommandStatus,
    DirEntry,
    EntryKind,
)
from orchestrator.domain.ids import (
    ChatSessionId,
    ChunkId,
    CommandId,
    JobId,
    JobRunId,
    MachineId,
    MessageId,
    PermissionId,
    QuestionId,
    UserId,
    WorkerId,
)
from orchestrator.domain.jobs import Job, JobDraft, JobRun, RunStatus, SessionMode
from orchestrator.domain.model import (
    Machine,
    MachineStatus,
    MachineSummary,
    User,
    Worker,
    WorkerCounts,
    WorkerStatus,
)
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from orchestrator.domain.questions import Question, QuestionOption, QuestionRequest, QuestionStatus
from orchestrator.domain.times import from_ms
from orchestrator.domain.times import to_ms as to_ms  # re-exported: ``wire.to_ms``

log = logging.getLogger("orchestrator.adapters.convex")

Record = Mapping[str, Any]


#: The domain errors a function may refuse with, by the ``kind`` it names.
ERROR_KINDS: Final[dict[str, type[errors.OrchestratorError]]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidInput,
        errors.InvalidToken,
        errors.PathOutsideRoot,
        errors.PayloadTooLarge,
        errors.AuthenticationFailed,
        errors.RateLimited,
        errors.PermissionDenied,
        errors.NotFound,
        errors.Conflict,
        errors.InvalidTransition,
        errors.TextGap,
        errors.MachineInUse,
    )
}


def error_from_data(data: object, fallback: str) -> errors.OrchestratorError:
    """The domain error a function's ``ConvexError`` data stands for."""
    if isinstance(data, Mapping):
        cls = ERROR_KINDS.get(str(data.get("kind")))
        message = data.get("message")
        if cls is not None and isinstance(message, str):
            return cls(message)
    # Not one of our functions' refusals: its text is for the log, not for a user.
    log.warning("Convex refused a call: %s (data: %r)", fallback, data)
    return errors.OrchestratorError(
        "The Convex deployment refused the call. The server log has the details."
    )


def _when(ms: float) -> datetime:
    return from_ms(int(ms))


def _maybe_when(ms: float | None) -> datetime | None:
    return None if ms is None else _when(ms)


def user(raw: Record) -> User:
    return User(
        user_id=UserId(raw["userId"]), username=raw["username"], created_at=_when(raw["createdAt"])
    )


def machine(raw: Record) -> Machine:
    return Machine(
        machine_id=MachineId(raw["machineId"]),
        user_id=UserId(raw["userId"]),
        name=raw["name"],
        status=MachineStatus(raw["status"]),
        created_at=_when(raw["createdAt"]),
        last_heartbeat=_maybe_when(raw["lastHeartbeat"]),
        root_directory=raw["rootDirectory"],
    )


def machine_summary(raw: Record) -> MachineSummary:
    counts = raw["workers"]
    return MachineSummary(
        machine=machine(raw["machine"]),
        workers=WorkerCounts(
            pending_authorization=int(counts["pending_authorization"]),
            ready=int(counts["ready"]),
            online=int(counts["online"]),
            offline=int(counts["offline"]),
        ),
    )


def worker(raw: Record) -> Worker:
    approved_by = raw["approvedBy"]
    return Worker(
        worker_id=WorkerId(raw["workerId"]),
        machine_id=MachineId(raw["machineId"]),
        directory=raw["directory"],
        status=WorkerStatus(raw["status"]),
        created_at=_when(raw["createdAt"]),
        name=raw["name"],
        approved_at=_maybe_when(raw["approvedAt"]),
        approved_by=None if approved_by is None else UserId(approved_by),
        last_heartbeat=_maybe_when(raw["lastHeartbeat"]),
        models=tuple(raw["models"]),
        agents=tuple(raw["agents"]),
        commands=tuple(raw["commands"]),
        permission_policy=permission_policy(raw["permissionPolicy"]),
        problem=raw.get("problem"),
    )


def permission_policy(raw: Record) -> PermissionPolicy:
    return PermissionPolicy(
        bash=PermissionAction(raw["bash"]),
        edit=PermissionAction(raw["edit"]),
        webfetch=PermissionAction(raw["webfetch"]),
        external_directory=PermissionAction(raw["externalDirectory"]),
    )


def permission_policy_args(policy: PermissionPolicy) -> dict[str, str]:
    """The policy as the Convex functions take it (camelCase keys)."""
    return {
        "bash": policy.bash.value,
        "edit": policy.edit.value,
        "webfetch": policy.webfetch.value,
        "externalDirectory": policy.external_directory.value,
    }


def chat_session(raw: Record) -> ChatSession:
    return ChatSession(
        chat_session_id=ChatSessionId(raw["chatSessionId"]),
        worker_id=WorkerId(raw["workerId"]),
        user_id=UserId(raw["userId"]),
        model=raw["model"],
        status=ChatSessionStatus(raw["status"]),
        created_at=_when(raw["createdAt"]),
        last_activity=_when(raw["lastActivity"]),
        agent_session_id=raw["agentSessionId"],
        title=raw["title"],
        agent=raw["agent"],
        undone_from=raw["undoneFrom"],
        undo_agent_id=raw["undoAgentId"],
        undone_at=_maybe_when(raw["undoneAt"]),
        undo_requests=int(raw["undoRequests"]),
        undo_applied=int(raw["undoApplied"]),
        undo_error=raw["undoError"],
    )


def chat_message(raw: Record) -> ChatMessage:
    reply_to = raw["replyTo"]
    return ChatMessage(
        message_id=MessageId(raw["messageId"]),
        chat_session_id=ChatSessionId(raw["chatSessionId"]),
        role=MessageRole(raw["role"]),
        content=raw["content"],
        status=MessageStatus(raw["status"]),
        timestamp=_when(raw["timestamp"]),
        reply_to=None if reply_to is None else MessageId(reply_to),
        error=raw["error"],
        abort_requested=bool(raw["abortRequested"]),
        agent=raw["agent"],
    )


def chat_chunk(raw: Record) -> ChatChunk:
    return ChatChunk(
        chunk_id=ChunkId(raw["chunkId"]),
        message_id=MessageId(raw["messageId"]),
        chat_session_id=ChatSessionId(raw["chatSessionId"]),
        chunk=raw["chunk"],
        sequence=int(raw["sequence"]),
        timestamp=_when(raw["timestamp"]),
        part_id=raw.get("partId"),
        offset=None if raw.get("offset") is None else int(raw["offset"]),
    )


def permission(raw: Record) -> PermissionRequest:
    answer = raw["answer"]
    return PermissionRequest(
        permission_id=PermissionId(raw["permissionId"]),
        chat_session_id=ChatSessionId(raw["chatSessionId"]),
        message_id=MessageId(raw["messageId"]),
        agent_request_id=raw["agentRequestId"],
        tool=raw["tool"],
        description=raw["description"],
        status=PermissionStatus(raw["status"]),
        created_at=_when(raw["createdAt"]),
        answer=None if answer is None else PermissionAnswer(answer),
        file=raw.get("file", ""),
        diff=raw.get("diff", ""),
        diff_size=int(raw.get("diffSize", 0)),
    )


def _asked(raw: Record) -> Question:
    options = tuple(QuestionOption(o["label"], o["description"]) for o in raw["options"])
    return Question(raw["question"], raw["header"], options, raw["multiple"], raw["custom"])


def question(raw: Record) -> QuestionRequest:
    """A ``questionRequests`` record as the domain's."""
    answers = raw["answers"]
    return QuestionRequest(
        question_id=QuestionId(raw["questionId"]),
        chat_session_id=ChatSessionId(raw["chatSessionId"]),
        message_id=MessageId(raw["messageId"]),
        agent_request_id=raw["agentRequestId"],
        questions=tuple(_asked(q) for q in raw["questions"]),
        status=QuestionStatus(raw["status"]),
        created_at=_when(raw["createdAt"]),
        answers=None if answers is None else tuple(tuple(a) for a in answers),
        dismissed=raw["dismissed"],
    )


def session_work(raw: Record) -> SessionWork:
    streaming = raw["streamingReply"]
    return SessionWork(
        session=chat_session(raw["session"]),
        pending_messages=tuple(chat_message(m) for m in raw["pendingMessages"]),
        streaming_reply=None if streaming is None else chat_message(streaming),
        answered_permissions=tuple(permission(p) for p in raw["answeredPermissions"]),
        answered_questions=tuple(question(q) for q in raw["answeredQuestions"]),
    )


def command_arguments(raw: Record) -> CommandArguments:
    return CommandArguments(raw["path"], bool(raw["parents"]), raw["url"], raw["cursor"])


def arguments_out(arguments: CommandArguments) -> dict[str, Any]:
    return {
        "path": arguments.path,
        "parents": arguments.parents,
        "url": arguments.url,
        "cursor": arguments.cursor,
    }


def _entry(raw: Record) -> DirEntry:
    size = raw["size"]
    return DirEntry(
        name=raw["name"],
        kind=EntryKind(raw["kind"]),
        size=None if size is None else int(size),
        modified=_maybe_when(raw["modified"]),
        is_git_repo=bool(raw["isGitRepo"]),
    )


def command_result(raw: Record) -> CommandResult:
    return CommandResult(
        path=raw["path"],
        entries=tuple(_entry(e) for e in raw["entries"]),
        total=int(raw["total"]),
        next_cursor=raw["nextCursor"],
    )


def result_out(result: CommandResult) -> dict[str, Any]:
    entries = [
        {
            "name": e.name,
            "kind": str(e.kind),
            "size": e.size,
            "modified": None if e.modified is None else to_ms(e.modified),
            "isGitRepo": e.is_git_repo,
        }
        for e in result.entries
    ]
    return {
        "path": result.path,
        "entries": entries,
        "total": result.total,
        "nextCursor": result.next_cursor,
    }


def command(raw: Record) -> Command:
    result = raw["result"]
    return Command(
        command_id=CommandId(raw["commandId"]),
        machine_id=MachineId(raw["machineId"]),
        user_id=UserId(raw["userId"]),
        kind=CommandKind(raw["kind"]),
        arguments=command_arguments(raw["arguments"]),
        status=CommandStatus(raw["status"]),
        created_at=_when(raw["createdAt"]),
        progress=int(raw["progress"]),
        progress_line=raw["progressLine"],
        result=None if result is None else command_result(result),
        error=raw["error"],
        cancel_requested=bool(raw["cancelRequested"]),
        started_at=_maybe_when(raw["startedAt"]),
        finished_at=_maybe_when(raw["finishedAt"]),
    )


def job(raw: Record) -> Job:
    worker_id, session_id = raw["workerId"], raw["chatSessionId"]
    return Job(
        job_id=JobId(raw["jobId"]),
        user_id=UserId(raw["userId"]),
        worker_id=None if worker_id is None else WorkerId(worker_id),
        name=raw["name"],
        model=raw["model"],
        prompt=raw["prompt"],
        cron=raw["cron"],
        timezone=raw["timezone"],
        enabled=bool(raw["enabled"]),
        session_mode=SessionMode(raw["sessionMode"]),
        created_at=_when(raw["createdAt"]),
        next_run_at=_maybe_when(raw["nextRunAt"]),
        chat_session_id=None if session_id is None else ChatSessionId(session_id),
        paused_reason=raw["pausedReason"],
    )


def draft_out(draft: JobDraft) -> dict[str, Any]:
    return {
        "workerId": draft.worker_id,
        "name": draft.name,
        "model": draft.model,
        "prompt": draft.prompt,
        "cron": draft.cron,
        "timezone": draft.timezone,
        "sessionMode": str(draft.session_mode),
        "enabled": draft.enabled,
    }


def maybe_ms(when: datetime | None) -> int | None:
    return None if when is None else to_ms(when)


def job_run(raw: Record) -> JobRun:
    session_id, message_id = raw["chatSessionId"], raw["messageId"]
    return JobRun(
        run_id=JobRunId(raw["runId"]),
        job_id=JobId(raw["jobId"]),
        scheduled_for=_when(raw["scheduledFor"]),
        created_at=_when(raw["createdAt"]),
        status=RunStatus(raw["status"]),
        chat_session_id=None if session_id is None else ChatSessionId(session_id),
        message_id=None if message_id is None else MessageId(message_id),
        finished_at=_maybe_when(raw["finishedAt"]),
        error=raw["error"],
    )

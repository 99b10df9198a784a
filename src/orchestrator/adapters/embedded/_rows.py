"""Conversions between SQLite rows and domain records."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiosqlite

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
)
from orchestrator.domain.ids import (
    ChatSessionId,
    ChunkId,
    MachineId,
    MessageId,
    PermissionId,
    QuestionId,
    UserId,
    WorkerId,
)
from orchestrator.domain.live import text_after
from orchestrator.domain.model import (
    Machine,
    MachineStatus,
    MachineSummary,
    User,
    Worker,
    WorkerCounts,
    WorkerStatus,
)
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionPolicy,
    parse_permission_policy,
)
from orchestrator.domain.questions import Question, QuestionOption, QuestionRequest, QuestionStatus
from orchestrator.domain.times import from_ms as from_ms  # re-exported: ``rows.from_ms``
from orchestrator.domain.times import to_ms as to_ms


def _opt_ms(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


def user(row: aiosqlite.Row) -> User:
    return User(
        user_id=UserId(row["user_id"]),
        username=row["username"],
        created_at=from_ms(row["created_at"]),
    )


def machine(row: aiosqlite.Row) -> Machine:
    return Machine(
        machine_id=MachineId(row["machine_id"]),
        user_id=UserId(row["user_id"]),
        name=row["name"],
        status=MachineStatus(row["status"]),
        created_at=from_ms(row["created_at"]),
        last_heartbeat=_opt_ms(row["last_heartbeat"]),
        root_directory=row["root_directory"],
    )


def machine_summary(row: aiosqlite.Row) -> MachineSummary:
    counts = WorkerCounts(
        pending_authorization=row["pending_authorization"],
        ready=row["ready"],
        online=row["online"],
        offline=row["offline"],
    )
    return MachineSummary(machine=machine(row), workers=counts)


def worker(row: aiosqlite.Row) -> Worker:
    approved_by = row["approved_by"]
    return Worker(
        worker_id=WorkerId(row["worker_id"]),
        machine_id=MachineId(row["machine_id"]),
        directory=row["directory"],
        status=WorkerStatus(row["status"]),
        created_at=from_ms(row["created_at"]),
        name=row["name"],
        approved_at=_opt_ms(row["approved_at"]),
        approved_by=None if approved_by is None else UserId(approved_by),
        last_heartbeat=_opt_ms(row["last_heartbeat"]),
        models=tuple(json.loads(row["models"])),
        agents=tuple(json.loads(row["agents"])),
        commands=tuple(json.loads(row["commands"])),
        permission_policy=_policy(row["permission_policy"]),
        problem=row["problem"],
    )


def _policy(raw: str | None) -> PermissionPolicy:
    # NULL: a worker from before policies existed gets the safe defaults.
    return DEFAULT_PERMISSION_POLICY if raw is None else parse_permission_policy(json.loads(raw))


def policy_json(policy: PermissionPolicy) -> str:
    return json.dumps(policy.as_dict())


def models_json(models: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(models))


def chat_session(row: aiosqlite.Row) -> ChatSession:
    return ChatSession(
        chat_session_id=ChatSessionId(row["chat_session_id"]),
        worker_id=WorkerId(row["worker_id"]),
        user_id=UserId(row["user_id"]),
        model=row["model"],
        status=ChatSessionStatus(row["status"]),
        created_at=from_ms(row["created_at"]),
        last_activity=from_ms(row["last_activity"]),
        agent_session_id=row["agent_session_id"],
        title=row["title"],
        agent=row["agent"],
        undone_from=None if row["undone_from"] is None else MessageId(row["undone_from"]),
        undo_agent_id=row["undo_agent_id"],
        undone_at=_opt_ms(row["undone_at"]),
        undo_requests=row["undo_requests"],
        undo_applied=row["undo_applied"],
        undo_error=row["undo_error"],
    )


def chat_message(row: aiosqlite.Row) -> ChatMessage:
    reply_to = row["reply_to"]
    return ChatMessage(
        message_id=MessageId(row["message_id"]),
        chat_session_id=ChatSessionId(row["chat_session_id"]),
        role=MessageRole(row["role"]),
        content=row["content"],
        status=MessageStatus(row["status"]),
        timestamp=from_ms(row["timestamp"]),
        reply_to=None if reply_to is None else MessageId(reply_to),
        error=row["error"],
        abort_requested=bool(row["abort_requested"]),
        agent=row["agent"],
    )


def chat_chunk(row: aiosqlite.Row, after: int | None = None) -> ChatChunk:
    """The chunk of ``row``; for a reader past sequence ``after``, only what it has not seen.

    A chunk the live relay stored for a run of deltas holds their ``marks``
    (:class:`~orchestrator.domain.live.TextRun`): a reader that saw some of them
    live gets the text after the last one it saw.
    """
    text, offset = row["chunk"], row["part_offset"]
    if after is not None and row["marks"] is not None and offset is not None:
        marks = tuple((int(s), int(o)) for s, o in json.loads(row["marks"]))
        text, offset = text_after(text, offset, marks, after)
    return ChatChunk(
        chunk_id=ChunkId(row["chunk_id"]),
        message_id=MessageId(row["message_id"]),
        chat_session_id=ChatSessionId(row["chat_session_id"]),
        chunk=text,
        sequence=row["sequence"],
        timestamp=from_ms(row["timestamp"]),
        part_id=row["part_id"],
        offset=offset,
    )


def permission(row: aiosqlite.Row) -> PermissionRequest:
    answer = row["answer"]
    return PermissionRequest(
        permission_id=PermissionId(row["permission_id"]),
        chat_session_id=ChatSessionId(row["chat_session_id"]),
        message_id=MessageId(row["message_id"]),
        agent_request_id=row["agent_request_id"],
        tool=row["tool"],
        description=row["description"],
        status=PermissionStatus(row["status"]),
        created_at=from_ms(row["created_at"]),
        answer=None if answer is None else PermissionAnswer(answer),
        file=row["file"],
        diff=row["diff"],
        diff_size=row["diff_size"],
    )


def _question(raw: dict[str, Any]) -> Question:
    options = tuple(QuestionOption(o["label"], o["description"]) for o in raw["options"])
    return Question(raw["question"], raw["header"], options, raw["multiple"], raw["custom"])


def question(row: aiosqlite.Row) -> QuestionRequest:
    answers = row["answers"]
    return QuestionRequest(
        question_id=QuestionId(row["question_id"]),
        chat_session_id=ChatSessionId(row["chat_session_id"]),
        message_id=MessageId(row["message_id"]),
        agent_request_id=row["agent_request_id"],
        questions=tuple(_question(q) for q in json.loads(row["questions"])),
        status=QuestionStatus(row["status"]),
        created_at=from_ms(row["created_at"]),
        answers=None if answers is None else tuple(tuple(a) for a in json.loads(answers)),
        dismissed=bool(row["dismissed"]),
    )

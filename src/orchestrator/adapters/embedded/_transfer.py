"""Storing exported records under their own IDs (``orchestrator import`` into SQLite)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final

import anyio

from orchestrator.adapters.embedded._store import Store, Tx
from orchestrator.application.transfer import taken
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ports import SecretHasher

#: For each exported type: its table and, in order, (column, how to get it from the record).
_INSERTS: Final[dict[str, tuple[str, tuple[tuple[str, Any], ...]]]] = {
    "user": ("users", (("user_id", "userId"), ("username", "username"),
                       ("password_hash", "passwordHash"), ("created_at", "createdAt"))),
    "machine": ("machines", (("machine_id", "machineId"), ("user_id", "userId"), ("name", "name"),
                             ("secret_hash", "secretHash"), ("status", "=offline"),
                             ("created_at", "createdAt"), ("root_directory", "rootDirectory"))),
    "worker": ("workers", (("worker_id", "workerId"), ("machine_id", "machineId"),
                           ("name", "name"), ("directory", "directory"), ("status", "status"),
                           ("created_at", "createdAt"), ("approved_at", "approvedAt"),
                           ("approved_by", "approvedBy"), ("models", "models"))),
    "session": ("chat_sessions", (("chat_session_id", "chatSessionId"), ("worker_id", "workerId"),
                                  ("user_id", "userId"), ("model", "model"), ("status", "status"),
                                  ("created_at", "createdAt"), ("last_activity", "lastActivity"),
                                  ("title", "title"), ("agent", "agent"))),
    "message": ("chat_messages", (("message_id", "messageId"),
                                  ("chat_session_id", "chatSessionId"), ("role", "role"),
                                  ("content", "content"), ("status", "status"),
                                  ("timestamp", "timestamp"), ("reply_to", "replyTo"),
                                  ("error", "error"), ("agent", "agent"),
                                  ("model", "model"))),
    "job": ("jobs", (("job_id", "jobId"), ("user_id", "userId"), ("worker_id", "workerId"),
                     ("name", "name"), ("model", "model"), ("prompt", "prompt"), ("cron", "cron"),
                     ("timezone", "timezone"), ("enabled", "enabled"),
                     ("session_mode", "sessionMode"), ("created_at", "createdAt"),
                     ("next_run_at", "nextRunAt"), ("chat_session_id", "chatSessionId"),
                     ("paused_reason", "pausedReason"))),
    "run": ("job_runs", (("run_id", "runId"), ("job_id", "jobId"),
                         ("scheduled_for", "scheduledFor"), ("created_at", "createdAt"),
                         ("status", "status"), ("chat_session_id", "chatSessionId"),
                         ("message_id", "messageId"), ("finished_at", "finishedAt"),
                         ("error", "error"))),
}  # fmt: skip


def _value(record: Mapping[str, Any], source: str) -> Any:
    if source.startswith("="):
        return source[1:]
    value = record[source]
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        return json.dumps(value)
    return value


async def _insert(tx: Tx, kind: str, record: Mapping[str, Any]) -> bool:
    table, columns = _INSERTS[kind]
    names = ", ".join(column for column, _ in columns)
    marks = ", ".join("?" for _ in columns)
    values = [_value(record, source) for _, source in columns]
    try:
        inserted = await tx.run(
            f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING",  # noqa: S608 -- fixed names
            *values,
        )
    except sqlite3.IntegrityError as exc:  # a broken reference: the records do not fit
        raise InvalidInput(
            f"The {kind} {record[columns[0][1]]} refers to a record that is not in the file."
        ) from exc
    return inserted > 0


async def _same_user(tx: Tx, record: Mapping[str, Any]) -> None:
    """A user not inserted must be the same account, not another one with that username."""
    if await tx.one("SELECT 1 FROM users WHERE user_id = ?", record["userId"]) is None:
        raise InvalidInput(taken(record["username"]))


class TransferSide:
    """``restore``: the ``Restorer`` of ``application.transfer`` on SQLite."""

    _store: Store
    _hasher: SecretHasher

    async def restore(self, kind: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Insert the records whose ID is not stored yet, in one transaction; their IDs."""
        if kind == "machine":
            hashed = [
                {**r, "secretHash": await anyio.to_thread.run_sync(self._hasher.hash, r["secret"])}
                for r in records
            ]
            records = hashed
        stored: list[str] = []
        async with self._store.transaction(write=True) as tx:
            for record in records:
                if await _insert(tx, kind, record):
                    stored.append(str(record[_INSERTS[kind][1][0][1]]))
                elif kind == "user":
                    await _same_user(tx, record)
        return stored

"""Conversions between SQLite rows and domain records."""

from __future__ import annotations

import json

import aiosqlite

from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.records import from_row, to_row
from orchestrator.domain.chat import ChatChunk, ChatMessage, ChatSession, PermissionRequest
from orchestrator.domain.live import text_after
from orchestrator.domain.model import Machine, MachineSummary, User, Worker
from orchestrator.domain.permissions import PermissionPolicy
from orchestrator.domain.questions import QuestionRequest
from orchestrator.domain.times import from_ms as from_ms  # re-exported: ``rows.from_ms``
from orchestrator.domain.times import to_ms as to_ms


async def insert(tx: Tx, table: str, record: object) -> None:
    """Store ``record`` as a new row of ``table``: one column per field, named by the converter."""
    row = to_row(record)
    columns, marks = ", ".join(row), ", ".join("?" * len(row))
    await tx.run(f"INSERT INTO {table} ({columns}) VALUES ({marks})", *row.values())  # noqa: S608 -- names from the record


# Typed readers of the tables' rows; :mod:`..records` converts.


def user(row: aiosqlite.Row) -> User:
    return from_row(row, User)


def machine(row: aiosqlite.Row) -> Machine:
    return from_row(row, Machine)


def machine_summary(row: aiosqlite.Row) -> MachineSummary:
    return from_row(row, MachineSummary)


def worker(row: aiosqlite.Row) -> Worker:
    return from_row(row, Worker)


def policy_json(policy: PermissionPolicy) -> str:
    return json.dumps(policy.as_dict())


def models_json(models: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(models))


def chat_session(row: aiosqlite.Row) -> ChatSession:
    return from_row(row, ChatSession)


def chat_message(row: aiosqlite.Row) -> ChatMessage:
    return from_row(row, ChatMessage)


def chat_chunk(row: aiosqlite.Row, after: int | None = None) -> ChatChunk:
    """The chunk of ``row``; for a reader past sequence ``after``, only what it has not seen.

    A chunk the live relay stored for a run of deltas holds their ``marks``
    (:class:`~orchestrator.domain.live.TextRun`): a reader that saw some of them
    live gets the text after the last one it saw.
    """
    text, offset = row["chunk"], row["part_offset"]
    if after is None or row["marks"] is None or offset is None:
        return from_row(row, ChatChunk)
    marks = tuple((int(s), int(o)) for s, o in json.loads(row["marks"]))
    text, offset = text_after(text, offset, marks, after)
    return from_row(row, ChatChunk, chunk=text, part_offset=offset)


def permission(row: aiosqlite.Row) -> PermissionRequest:
    return from_row(row, PermissionRequest)


def question(row: aiosqlite.Row) -> QuestionRequest:
    return from_row(row, QuestionRequest)

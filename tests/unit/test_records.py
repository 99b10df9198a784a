"""The one record converter: SQLite rows and Convex documents."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from orchestrator.adapters.records import (
    camel,
    from_document,
    from_row,
    to_document,
    to_row,
)
from orchestrator.domain import chat, commands, ids, model, notifications
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionAction,
    PermissionPolicy,
)

WHEN = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
WHEN_MS = 1735787045678
SESSION = ids.ChatSessionId("chs_1")
MESSAGE = ids.MessageId("msg_1")


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    yield connection
    connection.close()


def _row(db: sqlite3.Connection, **columns: object) -> sqlite3.Row:
    names = ", ".join(f"? AS {name}" for name in columns)
    row: sqlite3.Row = db.execute(f"SELECT {names}", tuple(columns.values())).fetchone()
    return row


def test_names_are_camel_cased_as_convex_spells_them() -> None:
    """``chat_session_id`` becomes ``chatSessionId``; one word stays as it is."""
    assert camel("chat_session_id") == "chatSessionId"
    assert camel("name") == "name"


def test_a_convex_document_reads_with_floats_milliseconds_and_defaults() -> None:
    """camelCase fields, float numbers and ms times read as the record; absent fields default."""
    raw = {
        "workerId": "wrk_1",
        "machineId": "mch_1",
        "directory": "a/b",
        "status": "online",
        "createdAt": float(WHEN_MS),
        "name": None,
        "approvedAt": None,
        "approvedBy": "usr_1",
        "lastHeartbeat": WHEN_MS + 0.5,
        "models": ["m"],
        "agents": [],
        "commands": ["init"],
        "permissionPolicy": {
            "bash": "allow",
            "edit": "ask",
            "webfetch": "deny",
            "externalDirectory": "deny",
        },
        "_creationTime": 1.0,
    }
    worker = from_document(raw, model.Worker)
    assert worker == model.Worker(
        ids.WorkerId("wrk_1"),
        ids.MachineId("mch_1"),
        "a/b",
        model.WorkerStatus.ONLINE,
        WHEN,
        approved_by=ids.UserId("usr_1"),
        last_heartbeat=WHEN,
        models=("m",),
        commands=("init",),
        permission_policy=PermissionPolicy(
            bash=PermissionAction.ALLOW, webfetch=PermissionAction.DENY
        ),
    )
    assert worker.problem is None


def test_records_go_to_convex_camel_cased_with_plain_values() -> None:
    """Keys camelCase, times ms, enums their values, sets sorted lists; and they read back."""
    entry = commands.DirEntry("src", commands.EntryKind.DIR, None, WHEN, is_git_repo=True)
    result = commands.CommandResult("/r", (entry,), 1, next_cursor="c")
    out = to_document(result)
    assert out == {
        "path": "/r",
        "entries": [
            {"name": "src", "kind": "dir", "size": None, "modified": WHEN_MS, "isGitRepo": True}
        ],
        "total": 1,
        "nextCursor": "c",
    }
    assert type(out["entries"][0]["kind"]) is str
    assert from_document(out, commands.CommandResult) == result
    settings = notifications.NotificationSettings(
        events=frozenset({notifications.PushEvent.PERMISSION, notifications.PushEvent.JOB_FAILED}),
        time_zone="Europe/Berlin",
    )
    assert to_document(settings) == {
        "events": ["job_failed", "permission"],
        "quietStart": None,
        "quietEnd": None,
        "timeZone": "Europe/Berlin",
    }
    assert from_document(to_document(settings), notifications.NotificationSettings) == settings


def test_worker_counts_keep_the_status_names_in_convex() -> None:
    """A machine summary's counts are keyed by worker status, not camelCased."""
    raw = {
        "machine": {
            "machineId": "mch_1",
            "userId": "usr_1",
            "name": "n",
            "status": "offline",
            "createdAt": WHEN_MS,
            "lastHeartbeat": None,
            "rootDirectory": None,
        },
        "workers": {"pending_authorization": 1.0, "ready": 2.0, "online": 0.0, "offline": 3.0},
    }
    summary = from_document(raw, model.MachineSummary)
    assert summary.workers == model.WorkerCounts(1, 2, 0, 3)
    assert summary.machine.status is model.MachineStatus.OFFLINE


def test_a_row_reads_json_columns_integer_booleans_and_milliseconds(db: sqlite3.Connection) -> None:
    """JSON text columns, 0/1 booleans and ms times read back; a NULL policy is the default."""
    policy = PermissionPolicy(bash=PermissionAction.ALLOW)
    worker = model.Worker(
        ids.WorkerId("wrk_1"),
        ids.MachineId("mch_1"),
        "",
        model.WorkerStatus.READY,
        WHEN,
        models=("a", "b"),
        permission_policy=policy,
    )
    stored = to_row(worker)
    assert (stored["created_at"], stored["models"]) == (WHEN_MS, '["a", "b"]')
    assert from_row(_row(db, **stored), model.Worker) == worker
    legacy = from_row(_row(db, **{**stored, "permission_policy": None}), model.Worker)
    assert legacy.permission_policy == DEFAULT_PERMISSION_POLICY
    command = commands.Command(
        ids.CommandId("cmd_1"),
        ids.MachineId("mch_1"),
        ids.UserId("usr_1"),
        commands.CommandKind.LIST_DIR,
        commands.CommandArguments("/r", parents=True),
        commands.CommandStatus.PENDING,
        WHEN,
        cancel_requested=True,
    )
    row = _row(db, **to_row(command))
    assert row["cancel_requested"] == 1
    assert from_row(row, commands.Command) == command


def test_a_chunk_row_keeps_its_offset_in_part_offset(db: sqlite3.Connection) -> None:
    """The chunk's ``offset`` is the ``part_offset`` column; given columns replace the row's."""
    chunk = chat.ChatChunk(ids.ChunkId("chk_1"), MESSAGE, SESSION, "Hi", 4, WHEN, "prt_1", 7)
    row = _row(db, **to_row(chunk))
    assert row["part_offset"] == 7
    assert from_row(row, chat.ChatChunk) == chunk
    tail = from_row(row, chat.ChatChunk, chunk="lo", part_offset=10)
    assert (tail.chunk, tail.offset, tail.sequence) == ("lo", 10, 4)


def test_a_joined_row_reads_a_located_record_and_its_worker_label(db: sqlite3.Connection) -> None:
    """A nested record comes from the joined row; the label is the worker's name, else folder."""
    pending = chat.PermissionStatus.PENDING
    request = chat.PermissionRequest(
        ids.PermissionId("prm_1"), SESSION, MESSAGE, "per_1", "bash", "ls", pending, WHEN
    )
    worker = {"user_id": "usr_1", "worker_id": "wrk_1", "worker_name": None, "directory": "repo"}
    row = _row(db, **to_row(request), **worker, machine_id="mch_1", machine_name="box")
    waiting = from_row(row, notifications.WaitingPermission)
    assert waiting == notifications.WaitingPermission(
        ids.UserId("usr_1"), request, ids.MachineId("mch_1"), "box", ids.WorkerId("wrk_1"), "repo"
    )
    named = from_row(row, notifications.WaitingPermission, worker_name="Reviewer")
    assert named.worker_label == "Reviewer"
    document = {
        "userId": "usr_1",
        "request": to_document(request),
        "machineId": "mch_1",
        "machineName": "box",
        "workerId": "wrk_1",
        "workerName": "Reviewer",
        "workerDirectory": "repo",
    }
    assert from_document(document, notifications.WaitingPermission) == named

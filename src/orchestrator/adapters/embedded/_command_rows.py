"""Commands as SQLite rows: conversions, and writing back a record the domain changed.

Arguments and results are JSON columns; timestamps inside them are integer
milliseconds like everywhere else. Every transition is computed by
:mod:`orchestrator.domain.commands` and stored whole with :func:`save_command`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiosqlite

from orchestrator.adapters.embedded._rows import from_ms, to_ms
from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandResult,
    CommandStatus,
    DirEntry,
    EntryKind,
    recover,
)
from orchestrator.domain.ids import CommandId, MachineId, UserId


def topic(machine_id: str) -> tuple[str, str]:
    """The change-feed topic of a machine's commands (its work list and its owner's views)."""
    return ("commands", machine_id)


def _opt_ms(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def arguments_json(arguments: CommandArguments) -> str:
    return json.dumps(
        {
            "path": arguments.path,
            "parents": arguments.parents,
            "url": arguments.url,
            "cursor": arguments.cursor,
        }
    )


def _arguments(raw: str) -> CommandArguments:
    data = json.loads(raw)
    return CommandArguments(data["path"], data["parents"], data["url"], data["cursor"])


def _result_json(result: CommandResult | None) -> str | None:
    if result is None:
        return None
    entries = [
        {
            "name": e.name,
            "kind": e.kind.value,
            "size": e.size,
            "modified": _opt_ms(e.modified),
            "is_git_repo": e.is_git_repo,
        }
        for e in result.entries
    ]
    return json.dumps(
        {
            "path": result.path,
            "entries": entries,
            "total": result.total,
            "next_cursor": result.next_cursor,
        },
        ensure_ascii=False,
    )


def _entry(data: dict[str, Any]) -> DirEntry:
    modified = data["modified"]
    return DirEntry(
        data["name"],
        EntryKind(data["kind"]),
        data["size"],
        None if modified is None else from_ms(modified),
        data["is_git_repo"],
    )


def _result(raw: str | None) -> CommandResult | None:
    if raw is None:
        return None
    data = json.loads(raw)
    entries = tuple(_entry(entry) for entry in data["entries"])
    return CommandResult(data["path"], entries, data["total"], data["next_cursor"])


def command(row: aiosqlite.Row) -> Command:
    started, finished = row["started_at"], row["finished_at"]
    return Command(
        command_id=CommandId(row["command_id"]),
        machine_id=MachineId(row["machine_id"]),
        user_id=UserId(row["user_id"]),
        kind=CommandKind(row["kind"]),
        arguments=_arguments(row["arguments"]),
        status=CommandStatus(row["status"]),
        created_at=from_ms(row["created_at"]),
        progress=row["progress"],
        progress_line=row["progress_line"],
        result=_result(row["result"]),
        error=row["error"],
        cancel_requested=bool(row["cancel_requested"]),
        started_at=None if started is None else from_ms(started),
        finished_at=None if finished is None else from_ms(finished),
    )


async def load_command(tx: Tx, command_id: str) -> Command:
    row = await tx.one("SELECT * FROM commands WHERE command_id = ?", command_id)
    assert row is not None
    return command(row)


async def save_command(tx: Tx, changed: Command) -> Command:
    """Store what a transition changed and wake the machine's and its owner's subscriptions."""
    await tx.run(
        "UPDATE commands SET status = ?, progress = ?, progress_line = ?, result = ?, error = ?,"
        " cancel_requested = ?, started_at = ?, finished_at = ? WHERE command_id = ?",
        changed.status.value,
        changed.progress,
        changed.progress_line,
        _result_json(changed.result),
        changed.error,
        int(changed.cancel_requested),
        _opt_ms(changed.started_at),
        _opt_ms(changed.finished_at),
        changed.command_id,
    )
    tx.touch(topic(changed.machine_id))
    return changed


async def recover_commands(tx: Tx, machine_id: str, now: datetime) -> None:
    """Apply :func:`~orchestrator.domain.commands.recover` to the machine's running commands."""
    found = await tx.all(
        "SELECT * FROM commands WHERE machine_id = ? AND status = 'running'", machine_id
    )
    for row in found:
        await save_command(tx, recover(command(row), now))

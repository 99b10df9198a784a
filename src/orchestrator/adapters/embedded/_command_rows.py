"""Commands as SQLite rows: conversions, and writing back a record the domain changed.

Arguments and results are JSON columns; timestamps inside them are integer
milliseconds like everywhere else. Every transition is computed by
:mod:`orchestrator.domain.commands` and stored whole with :func:`save_command`.
"""

from __future__ import annotations

from datetime import datetime

import aiosqlite

from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.records import from_row, to_json_text
from orchestrator.domain.commands import Command, CommandArguments, recover
from orchestrator.domain.times import to_ms


def topic(machine_id: str) -> tuple[str, str]:
    """The change-feed topic of a machine's commands (its work list and its owner's views)."""
    return ("commands", machine_id)


def _opt_ms(value: datetime | None) -> int | None:
    return None if value is None else to_ms(value)


def arguments_json(arguments: CommandArguments) -> str:
    return to_json_text(arguments)


def command(row: aiosqlite.Row) -> Command:
    return from_row(row, Command)


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
        None if changed.result is None else to_json_text(changed.result),
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

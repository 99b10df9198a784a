"""Directory commands on the embedded backend: the owner's side and the machine's side.

Each call is one transaction: the record is loaded, changed by the pure
transition in :mod:`orchestrator.domain.commands` and written back, so a
command is claimed once and finishes once even when calls race. Change-feed
topic: ``("commands", machine_id)`` for every command of a machine.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from orchestrator.adapters.embedded import _command_rows as rows
from orchestrator.adapters.embedded._machine_side import MachineSide
from orchestrator.adapters.embedded._rows import from_ms
from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain.commands import (
    KEEP_FINISHED_COMMANDS,
    LIST_COMMANDS_LIMIT,
    MAX_PENDING_COMMANDS,
    Command,
    CommandArguments,
    CommandKind,
    CommandOutcome,
    claim,
    finish,
    record_progress,
    request_cancel,
    validate_arguments,
    validate_progress,
)
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import CommandId, MachineId, MachineToken, UserId

NO_COMMAND = "No such command."
TOO_MANY_PENDING = (
    f"This machine already has {MAX_PENDING_COMMANDS} commands waiting. "
    "Wait for them to run or cancel some."
)

_OWNED_COMMAND = """
    SELECT c.* FROM commands AS c JOIN machines AS m USING (machine_id)
    WHERE c.command_id = ? AND m.user_id = ?
"""
_NEWEST = """
    SELECT * FROM commands WHERE machine_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?
"""
_OPEN = """
    SELECT * FROM commands WHERE machine_id = ? AND status IN ('pending', 'running')
    ORDER BY created_at, rowid
"""
_PRUNE = """
    DELETE FROM commands WHERE command_id IN (
        SELECT command_id FROM commands WHERE machine_id = ? AND status IN ('done', 'failed')
        ORDER BY created_at DESC, rowid DESC LIMIT -1 OFFSET ?
    )
"""


class CommandSide(MachineSide):
    """The :class:`~orchestrator.domain.ports.CommandUserBackend` and ``CommandMachineBackend``."""

    # --- the owner's side ---------------------------------------------------------

    async def _owned_command(self, tx: Tx, user: UserId, command_id: CommandId) -> Command:
        row = await tx.found(NO_COMMAND, _OWNED_COMMAND, command_id, user)
        return rows.command(row)

    async def create_command(
        self, user: UserId, machine_id: MachineId, kind: CommandKind, arguments: CommandArguments
    ) -> Command:
        arguments = validate_arguments(kind, arguments)
        command_id = self._ids.new_id("command")
        async with self._store.transaction(write=True) as tx:
            await self._owned_machine(tx, user, machine_id)
            waiting = await tx.one(
                "SELECT count(*) FROM commands WHERE machine_id = ? AND status = 'pending'",
                machine_id,
            )
            if waiting is not None and waiting[0] >= MAX_PENDING_COMMANDS:
                raise Conflict(TOO_MANY_PENDING)
            await tx.run(
                "INSERT INTO commands (command_id, machine_id, user_id, kind, arguments, status,"
                " created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
                command_id,
                machine_id,
                user,
                kind.value,
                rows.arguments_json(arguments),
                self._now(),
            )
            await tx.run(_PRUNE, machine_id, KEEP_FINISHED_COMMANDS)
            tx.touch(rows.topic(machine_id))
            return await rows.load_command(tx, command_id)

    async def get_command(self, user: UserId, command_id: CommandId) -> Command:
        async with self._store.transaction() as tx:
            return await self._owned_command(tx, user, command_id)

    async def list_commands(self, user: UserId, machine_id: MachineId) -> list[Command]:
        async with self._store.transaction() as tx:
            await self._owned_machine(tx, user, machine_id)
            return await tx.each(rows.command, _NEWEST, machine_id, LIST_COMMANDS_LIMIT)

    async def cancel_command(self, user: UserId, command_id: CommandId) -> Command:
        async with self._store.transaction(write=True) as tx:
            command = await self._owned_command(tx, user, command_id)
            return await rows.save_command(tx, request_cancel(command, from_ms(self._now())))

    async def watch_command(
        self, user: UserId, command_id: CommandId
    ) -> AsyncGenerator[Command, None]:
        machine_id = (await self.get_command(user, command_id)).machine_id
        updates = self._store.feed.watch(
            [rows.topic(machine_id)], lambda: self.get_command(user, command_id)
        )
        async with aclosing(updates) as values:
            async for command in values:
                yield command

    # --- the machine's side -------------------------------------------------------

    async def _open_commands(self, token: MachineToken) -> list[Command]:
        async with self._as_machine(token, write=False) as (tx, _):
            return await tx.each(rows.command, _OPEN, token.machine_id)

    def watch_commands(self, token: MachineToken) -> AsyncGenerator[list[Command], None]:
        return self._store.feed.watch(
            [rows.topic(token.machine_id)], lambda: self._open_commands(token)
        )

    async def _machine_command(self, tx: Tx, machine_id: str, command_id: CommandId) -> Command:
        row = await tx.one(
            "SELECT * FROM commands WHERE command_id = ? AND machine_id = ?", command_id, machine_id
        )
        if row is None:
            raise NotFound(NO_COMMAND)
        return rows.command(row)

    async def claim_command(self, token: MachineToken, command_id: CommandId) -> Command:
        async with self._as_machine(token) as (tx, _):
            command = await self._machine_command(tx, token.machine_id, command_id)
            return await rows.save_command(tx, claim(command, from_ms(self._now())))

    async def report_progress(
        self, token: MachineToken, command_id: CommandId, progress: int, line: str
    ) -> Command:
        validate_progress(progress, line)
        async with self._as_machine(token) as (tx, _):
            command = await self._machine_command(tx, token.machine_id, command_id)
            return await rows.save_command(tx, record_progress(command, progress, line))

    async def finish_command(
        self, token: MachineToken, command_id: CommandId, outcome: CommandOutcome
    ) -> Command:
        async with self._as_machine(token) as (tx, _):
            command = await self._machine_command(tx, token.machine_id, command_id)
            changed = finish(command, from_ms(self._now()), outcome.result, outcome.error)
            return await rows.save_command(tx, changed)

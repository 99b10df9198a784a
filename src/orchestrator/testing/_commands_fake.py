"""Directory commands for :class:`~orchestrator.testing.fakes.InMemoryBackend`: both sides.

The transitions are the domain's (``orchestrator.domain.commands``) and the
orderings those of the SQLite backend; the contract suite holds both to the
same result.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TypeVar

from orchestrator.domain import commands as rules
from orchestrator.domain.commands import (
    Command,
    CommandArguments,
    CommandKind,
    CommandOutcome,
    CommandStatus,
)
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import CommandId, MachineId, MachineToken, UserId
from orchestrator.testing._state_fake import FakeState

T = TypeVar("T")

NO_COMMAND = "No such command."
TOO_MANY_PENDING = (
    f"This machine already has {rules.MAX_PENDING_COMMANDS} commands waiting. "
    "Wait for them to run or cancel some."
)


class CommandFake(FakeState):
    """Commands in a dict, oldest first in insertion order."""

    def _of_machine(self, machine_id: MachineId) -> list[Command]:
        return [c for c in self.commands.values() if c.machine_id == machine_id]

    def _save_command(self, command: Command) -> Command:
        self.commands[command.command_id] = command
        return command

    async def _commit_command(self, command: Command) -> Command:
        """Store the changed command and wake its watchers."""
        self._save_command(command)
        await self._commit()
        return command

    def _drop_commands_of(self, machine_id: MachineId) -> None:
        """Cascade: forget the commands of a deleted machine."""
        for command in self._of_machine(machine_id):
            del self.commands[command.command_id]

    def _recover_commands(self, machine_id: MachineId) -> None:
        """What a dead process left running, as its successor's ``go_online`` finds it."""
        now = self._now()
        for command in self._of_machine(machine_id):
            self._save_command(rules.recover(command, now))

    # --- the owner's side ---------------------------------------------------------

    def _owned_command(self, user: UserId, command_id: CommandId) -> Command:
        command = self.commands.get(command_id)
        machine = self.machines.get(command.machine_id) if command else None
        if command is None or machine is None or machine.user_id != user:
            raise NotFound(NO_COMMAND)
        return command

    async def create_command(
        self, user: UserId, machine_id: MachineId, kind: CommandKind, arguments: CommandArguments
    ) -> Command:
        arguments = rules.validate_arguments(kind, arguments)
        self._owned_machine(user, machine_id)
        mine = self._of_machine(machine_id)
        if sum(c.status is CommandStatus.PENDING for c in mine) >= rules.MAX_PENDING_COMMANDS:
            raise Conflict(TOO_MANY_PENDING)
        command = Command(
            CommandId(self.ids.new_id("command")),
            machine_id,
            user,
            CommandKind(kind),
            arguments,
            CommandStatus.PENDING,
            self._now(),
        )
        self._save_command(command)
        finished = [c for c in self._of_machine(machine_id) if c.finished]
        for old in finished[: max(0, len(finished) - rules.KEEP_FINISHED_COMMANDS)]:
            del self.commands[old.command_id]
        await self._commit()
        return command

    async def get_command(self, user: UserId, command_id: CommandId) -> Command:
        return self._owned_command(user, command_id)

    async def list_commands(self, user: UserId, machine_id: MachineId) -> list[Command]:
        self._owned_machine(user, machine_id)
        return list(reversed(self._of_machine(machine_id)))[: rules.LIST_COMMANDS_LIMIT]

    async def cancel_command(self, user: UserId, command_id: CommandId) -> Command:
        command = self._owned_command(user, command_id)
        return await self._commit_command(rules.request_cancel(command, self._now()))

    async def watch_command(
        self, user: UserId, command_id: CommandId
    ) -> AsyncGenerator[Command, None]:
        self._owned_command(user, command_id)
        async with aclosing(self._watch(lambda: self.get_command(user, command_id))) as values:
            async for command in values:
                yield command

    # --- the machine's side -------------------------------------------------------

    def _machine_command(self, token: MachineToken, command_id: CommandId) -> Command:
        self._auth(token)
        command = self.commands.get(command_id)
        if command is None or command.machine_id != token.machine_id:
            raise NotFound(NO_COMMAND)
        return command

    async def _open_commands(self, token: MachineToken) -> list[Command]:
        machine_id = self._auth(token).machine_id
        return [c for c in self._of_machine(machine_id) if not c.finished]

    def watch_commands(self, token: MachineToken) -> AsyncGenerator[list[Command], None]:
        return self._watch(lambda: self._open_commands(token))

    async def claim_command(self, token: MachineToken, command_id: CommandId) -> Command:
        command = self._machine_command(token, command_id)
        return await self._commit_command(rules.claim(command, self._now()))

    async def report_progress(
        self, token: MachineToken, command_id: CommandId, progress: int, line: str
    ) -> Command:
        rules.validate_progress(progress, line)
        command = self._machine_command(token, command_id)
        return await self._commit_command(rules.record_progress(command, progress, line))

    async def finish_command(
        self, token: MachineToken, command_id: CommandId, outcome: CommandOutcome
    ) -> Command:
        command = self._machine_command(token, command_id)
        changed = rules.finish(command, self._now(), outcome.result, outcome.error)
        return await self._commit_command(changed)

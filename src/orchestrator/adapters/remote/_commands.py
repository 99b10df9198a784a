"""``CommandMachineBackend`` as a client of ``orchestrator serve``: one machine API call each."""

from __future__ import annotations

from collections.abc import AsyncIterator

from orchestrator.adapters.remote._transport import MachineApiClient
from orchestrator.adapters.remote.wire import SUBSCRIPTION_COMMANDS, converter
from orchestrator.domain.commands import Command, CommandResult
from orchestrator.domain.ids import CommandId, MachineToken


class CommandClient(MachineApiClient):
    """The directory-command calls of the machine API."""

    async def watch_commands(self, token: MachineToken) -> AsyncIterator[list[Command]]:
        """The machine's pending and running commands; survives reconnects."""
        async for value in self.subscribe(token, SUBSCRIPTION_COMMANDS):
            yield self._structure(value, list[Command])

    async def claim_command(self, token: MachineToken, command_id: CommandId) -> Command:
        """Take a pending command: it becomes ``running``; Conflict if it was already taken."""
        value = await self._call("claim_command", token, command_id=command_id)
        return self._structure(value, Command)

    async def report_progress(
        self, token: MachineToken, command_id: CommandId, progress: int, line: str
    ) -> Command:
        """Record how far a running command got (0-100) and the line that said so."""
        value = await self._call(
            "report_progress", token, command_id=command_id, progress=progress, line=line
        )
        return self._structure(value, Command)

    async def finish_command(
        self,
        token: MachineToken,
        command_id: CommandId,
        *,
        result: CommandResult | None = None,
        error: str | None = None,
    ) -> Command:
        """End a running command: ``done`` with its result, or ``failed`` with one sentence."""
        value = await self._call(
            "finish_command",
            token,
            command_id=command_id,
            result=None if result is None else converter.unstructure(result),
            error=error,
        )
        return self._structure(value, Command)

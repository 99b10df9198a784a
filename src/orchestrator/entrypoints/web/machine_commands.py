"""The directory-command half of the machine API: claim, progress, finish, and ``commands``.

Bodies are checked for shape here (IDs, types); the rules (sizes, states,
ownership) are the backend's, so every backend refuses the same things with
the same sentences.
"""

from __future__ import annotations

from typing import Final

from orchestrator.adapters.remote.wire import converter
from orchestrator.domain.commands import CommandResult
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.ids import CommandId, MachineToken
from orchestrator.domain.ports import Backend
from orchestrator.entrypoints.web.payload import Body, parse_id

COMMAND_METHODS: Final = frozenset({"claim_command", "report_progress", "finish_command"})
BAD_RESULT: Final = "The field 'result' is not a valid command result."


def _command_id(body: Body) -> CommandId:
    return CommandId(parse_id(body.string("command_id"), "command"))


def _progress(body: Body) -> int:
    value = body.data.get("progress")
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput("The field 'progress' must be a whole number from 0 to 100.")
    return value


def _result(body: Body) -> CommandResult | None:
    raw = body.data.get("result")
    if raw is None:
        return None
    try:
        return converter.structure(raw, CommandResult)
    except Exception as exc:
        raise InvalidInput(BAD_RESULT) from exc


async def dispatch(backend: Backend, method: str, token: MachineToken, body: Body) -> object:
    """Run the command method ``method`` of the machine API with the arguments in ``body``."""
    if method == "claim_command":
        return await backend.claim_command(token, _command_id(body))
    if method == "report_progress":
        return await backend.report_progress(
            token, _command_id(body), _progress(body), body.string("line")
        )
    if method == "finish_command":
        return await backend.finish_command(
            token, _command_id(body), result=_result(body), error=body.optional_string("error")
        )
    raise NotFound("There is no such machine API method.")

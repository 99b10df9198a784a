"""The directory-command half of the machine API: how its arguments are read from bodies.

Bodies are checked for shape here (IDs, types); the rules (sizes, states,
ownership) are the backend's, so every backend refuses the same things with
the same sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from orchestrator.adapters.wire import converter
from orchestrator.domain.commands import CommandResult
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import CommandId
from orchestrator.entrypoints.web.payload import Body, parse_id

BAD_RESULT: Final = "The field 'result' is not a valid command result."


def _progress(body: Body, key: str) -> int:
    value = body.data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"The field '{key}' must be a whole number from 0 to 100.")
    return value


def _result(body: Body, key: str) -> CommandResult | None:
    raw = body.data.get(key)
    if raw is None:
        return None
    try:
        return converter.structure(raw, CommandResult)
    except Exception as exc:
        raise InvalidInput(BAD_RESULT) from exc


#: How the command calls of the machine API read each type of argument from a body.
COMMAND_READERS: Final[dict[object, Callable[[Body, str], object]]] = {
    CommandId: lambda body, key: CommandId(parse_id(body.string(key), "command")),
    CommandResult | None: _result,
}
#: Arguments read by name rather than type.
COMMAND_FIELDS: Final[dict[str, Callable[[Body, str], object]]] = {
    "progress": _progress,
}

"""The chat half of the machine API: how its arguments and live events are read from bodies.

Bodies are checked for shape here (IDs, types, enum values); the rules on
content (sizes, states, ownership) are the backend's, so the embedded backend,
Convex and this API refuse the same things with the same sentences.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import cattrs

from orchestrator.adapters.parts_json import body_from_dict
from orchestrator.adapters.wire import converter
from orchestrator.domain.chat import MAX_REPLY_LENGTH
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import ChatSessionId, MessageId, PermissionId, QuestionId
from orchestrator.domain.live import LiveEvent, LivePart, LiveText
from orchestrator.domain.parts import PartBody, TextKind, validate_part_id
from orchestrator.domain.questions import Question
from orchestrator.entrypoints.web.payload import Body, parse_id

E = TypeVar("E", bound=enum.Enum)

#: Route name of ``POST /api/machine/{method}``, which takes a whole reply in one body.
MACHINE_CALL_ROUTE: Final = "machine.call"
#: Worst case of JSON for one character: an astral one escaped as two ``\\uXXXX``.
_JSON_BYTES_PER_CHAR: Final = 12


def live_event(body: Body) -> LiveEvent:
    """The live event in a machine's ``{"live": n, "event": {...}}`` frame."""
    session_id, message_id = _session_id(body), _message_id(body)
    part_id = validate_part_id(body.string("part_id"))
    kind = body.string("type")
    if kind == "text":
        return LiveText(
            session_id,
            message_id,
            part_id,
            read_enum(body, "kind", TextKind),
            read_int(body),
            body.string("text"),
        )
    if kind == "part":
        return LivePart(session_id, message_id, part_id, _part_body(body))
    raise InvalidInput("The field 'type' of a live event must be 'text' or 'part'.")


def machine_body_bytes(max_body_bytes: int) -> int:
    """The body limit of machine calls: the longest reply fits, however it is encoded."""
    return max(max_body_bytes, MAX_REPLY_LENGTH * _JSON_BYTES_PER_CHAR + 64 * 1024)


def _session_id(body: Body) -> ChatSessionId:
    return ChatSessionId(parse_id(body.string("session_id"), "chat session"))


def _message_id(body: Body) -> MessageId:
    return MessageId(parse_id(body.string("message_id"), "message"))


def read_enum(body: Body, key: str, kind: type[E]) -> E:
    raw = body.string(key)
    try:
        return kind(raw)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"The field '{key}' must be one of: {allowed}.") from exc


def _part_body(body: Body, key: str = "body") -> PartBody:
    raw = body.data.get(key)
    if not isinstance(raw, dict):
        raise InvalidInput(f"The field '{key}' must be a JSON object.")
    return body_from_dict(raw)


def read_int(body: Body, key: str = "offset") -> int:
    """The required whole number ``key``."""
    value = body.data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"The field '{key}' must be an integer.")
    return value


def _questions(body: Body, key: str) -> list[Question]:
    try:
        return converter.structure(body.data.get(key), list[Question])
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise InvalidInput(
            "The field 'questions' must be a list of questions, each with its question,"
            " header and options."
        ) from exc


def _id(what: str) -> Callable[[Body, str], str]:
    return lambda body, key: parse_id(body.string(key), what)


#: How the chat calls of the machine API read each type of argument from a body.
CHAT_READERS: Final[dict[object, Callable[[Body, str], object]]] = {
    ChatSessionId: _id("chat session"),
    MessageId: _id("message"),
    PermissionId: _id("permission request"),
    QuestionId: _id("question"),
    PartBody: _part_body,
    Sequence[Question]: _questions,
}

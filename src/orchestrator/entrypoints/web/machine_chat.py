"""The chat half of the machine API: ``ChatMachineBackend`` calls and the ``work`` subscription.

Bodies are checked for shape here (IDs, types, enum values); the rules on
content (sizes, states, ownership) are the backend's, so the embedded backend,
Convex and this API refuse the same things with the same sentences.
"""

from __future__ import annotations

from typing import Final, TypeVar

import cattrs

from orchestrator.adapters.parts_json import body_from_dict
from orchestrator.adapters.remote.wire import converter
from orchestrator.domain.chat import MAX_REPLY_LENGTH, ChatSessionStatus, MessageStatus
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, PermissionId, QuestionId
from orchestrator.domain.live import LiveEvent, LivePart, LiveText
from orchestrator.domain.parts import PartBody, TextKind, validate_part_id
from orchestrator.domain.ports import Backend
from orchestrator.domain.questions import Question
from orchestrator.entrypoints.web.payload import Body, parse_id

E = TypeVar("E", ChatSessionStatus, MessageStatus, TextKind)

#: Route name of ``POST /api/machine/{method}``, which takes a whole reply in one body.
MACHINE_CALL_ROUTE: Final = "machine.call"
#: Worst case of JSON for one character: an astral one escaped as two ``\\uXXXX``.
_JSON_BYTES_PER_CHAR: Final = 12

CHAT_METHODS: Final = frozenset(
    {
        "list_session_messages",
        "claim_message",
        "append_chunk",
        "save_part",
        "append_part_text",
        "complete_message",
        "end_reply",
        "update_session",
        "report_undo",
        "record_permission",
        "resolve_permission",
        "record_question",
        "resolve_question",
    }
)


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
            _enum(body, "kind", TextKind),
            _offset(body),
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


def _enum(body: Body, key: str, kind: type[E]) -> E:
    raw = body.string(key)
    try:
        return kind(raw)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidInput(f"The field '{key}' must be one of: {allowed}.") from exc


def _part_body(body: Body) -> PartBody:
    raw = body.data.get("body")
    if not isinstance(raw, dict):
        raise InvalidInput("The field 'body' must be a JSON object.")
    return body_from_dict(raw)


def _offset(body: Body, key: str = "offset") -> int:
    value = body.data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"The field '{key}' must be an integer.")
    return value


async def dispatch(backend: Backend, method: str, token: MachineToken, body: Body) -> object:
    """Run the chat method ``method`` of the machine API with the arguments in ``body``."""
    if method == "list_session_messages":
        return await backend.list_session_messages(token, _session_id(body))
    if method == "claim_message":
        return await backend.claim_message(token, _message_id(body))
    if method == "append_chunk":
        return await backend.append_chunk(token, _message_id(body), body.string("text"))
    if method == "save_part":
        return await backend.save_part(
            token, _message_id(body), body.string("part_id"), _part_body(body)
        )
    if method == "append_part_text":
        return await backend.append_part_text(
            token,
            _message_id(body),
            body.string("part_id"),
            _offset(body),
            body.string("text"),
            _enum(body, "kind", TextKind),
        )
    if method == "complete_message":
        return await backend.complete_message(token, _message_id(body), body.string("content"))
    if method == "end_reply":
        status = _enum(body, "status", MessageStatus)
        return await backend.end_reply(token, _message_id(body), status, body.string("reason"))
    if method == "update_session":
        unset = body.data.get("status") is None
        session_status = None if unset else _enum(body, "status", ChatSessionStatus)
        return await backend.update_session(
            token,
            _session_id(body),
            status=session_status,
            agent_session_id=body.optional_string("agent_session_id"),
            title=body.optional_string("title"),
        )
    if method == "report_undo":
        applied, error = _offset(body, "applied"), body.optional_string("error")
        return await backend.report_undo(token, _session_id(body), applied, error)
    if method == "record_permission":
        return await backend.record_permission(
            token,
            _message_id(body),
            body.string("agent_request_id"),
            body.string("tool"),
            body.string("description"),
            # Absent from machines older than edit diffs: a request without a file.
            file=body.optional_string("file") or "",
            diff=body.optional_string("diff") or "",
            diff_size=_offset(body, "diff_size") if "diff_size" in body.data else 0,
        )
    if method == "resolve_permission":
        permission_id = PermissionId(parse_id(body.string("permission_id"), "permission request"))
        return await backend.resolve_permission(token, permission_id)
    if method == "record_question":
        return await backend.record_question(
            token, _message_id(body), body.string("agent_request_id"), _questions(body)
        )
    if method == "resolve_question":
        question_id = QuestionId(parse_id(body.string("question_id"), "question"))
        return await backend.resolve_question(token, question_id)
    raise NotFound("There is no such machine API method.")


def _questions(body: Body) -> list[Question]:
    try:
        return converter.structure(body.data.get("questions"), list[Question])
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise InvalidInput(
            "The field 'questions' must be a list of questions, each with its question,"
            " header and options."
        ) from exc

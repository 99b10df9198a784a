"""The one converter of message parts, shared by SQLite, Convex and the wire.

A part's body becomes a JSON object ``{"type": "<opencode type>", ...fields}``
with snake_case keys and times as integer milliseconds; a stored part keeps its
``text`` apart (it grows by deltas) and the rest as that JSON without it. A
body of an unknown type reads back as
:class:`~orchestrator.domain.parts.OpaquePart`, so nothing is dropped.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

import cattrs

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.parts import (
    PART_TYPES,
    OpaquePart,
    PartBody,
    opaque,
    part_type,
)
from orchestrator.domain.times import from_ms, to_ms


def _string(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _integer(value: object, _: type) -> int:
    # Convex sends every number as a float; a whole one is an integer.
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise TypeError("expected an integer")
    return int(value)


def _boolean(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _number(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return float(value)


# Strict: a part from the wire with a number where text belongs is refused, not converted.
_conv = cattrs.Converter()
_conv.register_structure_hook(str, _string)
_conv.register_structure_hook(int, _integer)
_conv.register_structure_hook(float, _number)
_conv.register_structure_hook(bool, _boolean)
_conv.register_structure_hook(enum.StrEnum, lambda value, cls: cls(_string(value, cls)))
_conv.register_unstructure_hook(enum.StrEnum, lambda member: member.value)
_conv.register_unstructure_hook(datetime, to_ms)
_conv.register_structure_hook(datetime, lambda ms, _: from_ms(ms))


def body_to_dict(body: PartBody) -> dict[str, Any]:
    """``body`` as a JSON-ready object with its ``type``."""
    if isinstance(body, OpaquePart):
        return {"type": body.type, "data": body.data, "size": body.size, "opaque": True}
    fields: dict[str, Any] = _conv.unstructure(body)
    return {"type": body.TYPE, **fields}


def body_from_dict(value: dict[str, Any]) -> PartBody:
    """The body a :func:`body_to_dict` object describes; an unknown type stays opaque.

    A known type in a shape it cannot have (a number where text belongs …) is
    :class:`~orchestrator.domain.errors.InvalidInput`.
    """
    type_ = str(value.get("type", ""))
    if value.get("opaque"):
        return OpaquePart(type_, str(value.get("data", "")), int(value.get("size", 0)))
    cls = PART_TYPES.get(type_)
    if cls is None:
        return opaque(type_, json.dumps(value, separators=(",", ":")))
    fields = {k: v for k, v in value.items() if k != "type"}
    try:
        body: PartBody = _conv.structure(fields, cls)
    except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
        raise InvalidInput(f"This {type_} part is not in a shape this version can read.") from exc
    return body


def body_to_row(body: PartBody) -> tuple[str, str, str]:
    """``(type, text, data)`` to store: the growing text apart from the other fields."""
    fields = body_to_dict(body)
    text = fields.pop("text", "")
    return part_type(body), str(text), json.dumps(fields, separators=(",", ":"))


def body_from_row(text: str, data: str) -> PartBody:
    """The body stored as :func:`body_to_row` wrote it."""
    fields = json.loads(data)
    if fields.get("type") in ("text", "reasoning"):
        fields["text"] = text
    return body_from_dict(fields)

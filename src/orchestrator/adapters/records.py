"""The one converter of domain records to what the stores hold, and back.

Two formats, one set of rules (cattrs hooks built by :func:`_converter`):

* **SQLite rows**: the record's snake_case field names as columns, times as
  integer milliseconds, booleans as 0/1, and a collection or nested record as
  JSON text (its keys snake_case, its times milliseconds);
* **Convex documents** (``backend_convex/convex/lib/validators.ts``): camelCase
  fields, ``null`` for an absent value, every number a float and every time
  milliseconds.

A record that places a worker for a user (``WaitingPermission`` …) takes its
``worker_label`` from the worker's name and folder in the same row or document.
A third, :func:`json_converter`, is the browser's and the machine API's JSON
(ISO times); :data:`orchestrator.adapters.wire.converter` is the one instance.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import types
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import JsonConverter, make_converter

from orchestrator.adapters.parts_json import body_from_dict, body_from_row, body_to_dict
from orchestrator.domain.chat import ChatChunk, ChatMessage
from orchestrator.domain.commands import Command
from orchestrator.domain.model import WorkerCounts
from orchestrator.domain.notifications import worker_label
from orchestrator.domain.parts import MessagePart, PartBody
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionPolicy,
    parse_permission_policy,
)
from orchestrator.domain.times import from_ms, to_ms

T = TypeVar("T")
Record = Mapping[str, Any]

#: Columns whose name is not the field's (``offset`` is an SQL keyword).
_COLUMNS: Final[dict[tuple[type, str], str]] = {(ChatChunk, "offset"): "part_offset"}


def when(ms: float) -> datetime:
    """The time ``ms`` milliseconds after the epoch, to the whole millisecond."""
    return from_ms(int(ms))


def camel(name: str) -> str:
    """``chat_session_id`` as Convex spells it: ``chatSessionId``."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _nested(kind: Any) -> bool:
    """Whether a field of type ``kind`` is a collection or a record (JSON text in a row)."""
    if get_origin(kind) in (Union, types.UnionType):
        return any(_nested(arg) for arg in get_args(kind) if arg is not type(None))
    return attrs.has(kind) or get_origin(kind) in (tuple, frozenset, list)


def _converter(name: Callable[[type, str], str], *, rows: bool) -> cattrs.Converter:
    """Records with keys as ``name`` spells them; for ``rows``, nested values are JSON text
    and a nested record without a column of its own is read from the same (joined) row."""
    # Plain errors, not detailed ones: these records come from our own stores, read often.
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(datetime, lambda ms, _: when(ms))
    conv.register_unstructure_hook(datetime, to_ms)
    # cattrs passes a ``str`` subclass through; what is stored is the plain value.
    conv.register_unstructure_hook(enum.StrEnum, lambda member: member.value)
    # A set travels as a list, sorted so that equal sets are stored alike.
    conv.register_unstructure_hook_func(
        lambda kind: frozenset in (kind, get_origin(kind)),
        lambda members: sorted(conv.unstructure(m) for m in members),
    )

    # A part's body is stored as its text and the JSON of its other fields.
    conv.register_structure_hook_func(lambda kind: kind == PartBody, lambda body, _: body)

    def from_text(value: Any, kind: Any) -> Any:
        return conv.structure(json.loads(value) if isinstance(value, str) else value, kind)

    def fields(cls: type, reading: bool) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field in attrs.fields(attrs.resolve_types(cls)):
            hook = from_text if reading and rows and _nested(field.type) else None
            found[field.name] = override(rename=name(cls, field.name), struct_hook=hook)
        return found

    def structure(cls: type) -> Callable[[Any, type], Any]:
        read: Callable[[Any, type], Any] = make_dict_structure_fn(
            cls, conv, **fields(cls, reading=True)
        )
        if cls is MessagePart:
            body = name(cls, "body")
            return lambda raw, kind: read(
                {**raw, body: body_from_row(raw["text"], raw["data"])}, kind
            )
        joined = [name(cls, f.name) for f in attrs.fields(cls) if rows and attrs.has(f.type)]
        located = "worker_label" in attrs.fields_dict(cls)
        if not joined and not located:
            return read
        label, worker, folder = (name(cls, f) for f in ("worker_label", "worker_name", "folder"))

        def complete(raw: Record, kind: type) -> Any:
            found = {**dict.fromkeys(joined, raw), **raw}
            if located:
                found[label] = worker_label(raw[worker], raw[folder])
            return read(found, kind)

        return complete

    conv.register_structure_hook_factory(attrs.has, structure)
    conv.register_unstructure_hook_factory(
        attrs.has, lambda cls: make_dict_unstructure_fn(cls, conv, **fields(cls, reading=False))
    )
    return conv


def _column(cls: type, field: str) -> str:
    # The folder of a located record's worker is the workers table's ``directory``.
    return "directory" if field == "folder" else _COLUMNS.get((cls, field), field)


def _key(cls: type, field: str) -> str:
    # Worker counts keep the names of the worker statuses they count.
    return (
        field if cls is WorkerCounts else camel("worker_directory" if field == "folder" else field)
    )


def _policy(raw: object, _: type) -> PermissionPolicy:
    # NULL: a worker from before policies existed gets the safe defaults.
    return DEFAULT_PERMISSION_POLICY if raw is None else parse_permission_policy(raw)


_ROWS: Final = _converter(_column, rows=True)
_ROWS.register_structure_hook(PermissionPolicy, _policy)
_DOCUMENTS: Final = _converter(_key, rows=False)


def _columns(row: sqlite3.Row | Record) -> Record:
    # A ``sqlite3.Row`` answers ``in`` for its values, not for its column names.
    return dict(row) if isinstance(row, sqlite3.Row) else row


def from_row(row: sqlite3.Row | Record, cls: type[T], **replaced: object) -> T:
    """The ``cls`` record in ``row``; ``replaced`` stand in for columns it lacks or replace them."""
    found = _columns(row)
    return _ROWS.structure({**found, **replaced} if replaced else found, cls)


def to_row(record: object) -> dict[str, Any]:
    """``record`` as its table's row: a column per field, nested values as JSON text."""
    found: dict[str, Any] = _ROWS.unstructure(record)
    cls: type[Any] = type(record)
    for field in attrs.fields(attrs.resolve_types(cls)):
        column = _column(cls, field.name)
        if _nested(field.type) and found[column] is not None:
            found[column] = json.dumps(found[column], ensure_ascii=False)
    return found


def to_json_text(record: object) -> str:
    """``record`` as the JSON text a column holds."""
    return json.dumps(_ROWS.unstructure(record), ensure_ascii=False)


def from_document(raw: Record, cls: type[T]) -> T:
    """The ``cls`` record in a Convex document."""
    return _DOCUMENTS.structure(raw, cls)


def to_document(record: object) -> dict[str, Any]:
    """``record`` as a Convex function takes it: camelCase keys, times in milliseconds."""
    found: dict[str, Any] = _DOCUMENTS.unstructure(record)
    return found


def _datetime_from_iso(value: object, _: type[datetime]) -> datetime:
    if not isinstance(value, str):
        raise TypeError("a timestamp must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a timestamp must carry its UTC offset")
    return parsed


def json_converter() -> JsonConverter:
    """The browser's and the machine API's JSON: snake_case keys, ISO-8601 times, enum values."""
    conv = make_converter()
    # The JSON preconf passes ``str`` subclasses through; the wire wants plain values.
    for base in (enum.Enum, enum.StrEnum, enum.IntEnum):
        conv.register_unstructure_hook(base, lambda member: member.value)
    conv.register_unstructure_hook(datetime, lambda moment: moment.isoformat())
    conv.register_structure_hook(datetime, _datetime_from_iso)
    # ``completed`` is derived from the status; it is sent for readers (the browser)
    # and ignored when read back.
    message_fields = make_dict_unstructure_fn(ChatMessage, conv)
    conv.register_unstructure_hook(
        ChatMessage, lambda message: {**message_fields(message), "completed": message.completed}
    )
    command_fields = make_dict_unstructure_fn(Command, conv)
    conv.register_unstructure_hook(
        Command, lambda command: {**command_fields(command), "finished": command.finished}
    )
    # A part's body is one of several records, tagged with its type (as is the part).
    conv.register_unstructure_hook_func(lambda kind: kind == PartBody, body_to_dict)
    conv.register_structure_hook_func(
        lambda kind: kind == PartBody, lambda value, _: body_from_dict(value)
    )
    part_fields = make_dict_unstructure_fn(MessagePart, conv)
    conv.register_unstructure_hook(
        MessagePart, lambda part: {**part_fields(part), "type": part.type}
    )
    return conv

"""opencode 1.18.33's parts (``message.part.updated``) as the domain's part records.

Only this module knows opencode's part shapes (``packages/opencode/src/session/
message-v2.ts``): a tool's ``state`` with ``time.start``/``time.end`` in
milliseconds, ``step-finish`` tokens with ``cache.read``/``cache.write``. A type
it does not know, or a known one in a shape it cannot read, is kept as an
:class:`~orchestrator.domain.parts.OpaquePart` with its JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.domain.diffs import FileDiff, TurnDiffPart
from orchestrator.domain.parts import (
    AgentPart,
    FilePart,
    PartBody,
    PatchPart,
    StepFinishPart,
    StepStartPart,
    SubtaskPart,
    Todo,
    TodoListPart,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
    opaque,
)
from orchestrator.domain.times import from_ms


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _time(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return from_ms(value)
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _tool_state(state: Mapping[str, Any]) -> ToolState:
    status = ToolStatus(str(state.get("status")))
    time = _mapping(state.get("time"))
    output = state.get("output")
    return ToolState(
        status,
        input=json.dumps(state.get("input") or {}, separators=(",", ":"), sort_keys=True),
        title=state.get("title") if isinstance(state.get("title"), str) else None,
        output=output if isinstance(output, str) else None,
        output_size=len(output.encode()) if isinstance(output, str) else 0,
        error=state.get("error") if isinstance(state.get("error"), str) else None,
        started_at=_time(time.get("start")),
        ended_at=_time(time.get("end")),
    )


def _known(part: Mapping[str, Any]) -> PartBody | None:
    kind = part.get("type")
    if kind == "tool":
        state = _tool_state(_mapping(part.get("state")))
        return ToolPart(_text(part.get("tool")), _text(part.get("callID")), state)
    if kind == "step-start":
        return StepStartPart()
    if kind == "step-finish":
        tokens = _mapping(part.get("tokens"))
        cache = _mapping(tokens.get("cache"))
        cost = part.get("cost")
        return StepFinishPart(
            _text(part.get("reason")),
            float(cost) if isinstance(cost, int | float) else 0.0,
            Tokens(
                input=_int(tokens.get("input")),
                output=_int(tokens.get("output")),
                reasoning=_int(tokens.get("reasoning")),
                cache_read=_int(cache.get("read")),
                cache_write=_int(cache.get("write")),
            ),
        )
    if kind == "file":
        filename = part.get("filename")
        return FilePart(
            _text(part.get("mime")),
            _text(part.get("url")),
            filename if isinstance(filename, str) else None,
        )
    if kind == "patch":
        files = part.get("files")
        names = tuple(f for f in files if isinstance(f, str)) if isinstance(files, list) else ()
        return PatchPart(_text(part.get("hash")), names)
    if kind == "subtask":
        return SubtaskPart(
            _text(part.get("agent")), _text(part.get("description")), _text(part.get("prompt"))
        )
    if kind == "agent":
        return AgentPart(_text(part.get("name")))
    return None


def todo_list(todos: object) -> TodoListPart:
    """The todo list of a ``todo.updated`` event (its ``todos``); items without text are skipped."""
    items = [_mapping(t) for t in todos] if isinstance(todos, list) else []
    return TodoListPart(
        tuple(
            Todo(_text(t.get("content")), _text(t.get("status")), _text(t.get("priority")))
            for t in items
            if isinstance(t.get("content"), str)
        )
    )


def part_body(part: Mapping[str, Any]) -> PartBody:
    """The domain record of an opencode part that is not text or reasoning."""
    try:
        body = _known(part)
    except ValueError:  # e.g. a tool state this version does not know
        body = None
    if body is not None:
        return body
    return opaque(str(part.get("type", "")), json.dumps(part, separators=(",", ":")))


def turn_diff(agent_message_id: str, diffs: object) -> TurnDiffPart:
    """The files of ``GET /session/{id}/diff?messageID=…`` (a list of file diffs) as a part."""
    items = [_mapping(d) for d in diffs] if isinstance(diffs, list) else []
    files = []
    for item in items:
        name, patch = item.get("file"), _text(item.get("patch"))
        if not isinstance(name, str):
            continue
        files.append(
            FileDiff(
                name,
                _text(item.get("status")) or "modified",
                _int(item.get("additions")),
                _int(item.get("deletions")),
                patch,
                len(patch.encode()),
            )
        )
    return TurnDiffPart(agent_message_id, tuple(files))

"""Parts: the typed pieces a reply is made of, mirroring opencode-ai 1.18.33's.

opencode sends each part whole (``message.part.updated``) whenever it changes
and grows text and reasoning parts by deltas (``message.part.delta``). Here a
part is keyed by its reply and the agent's part ID, so a re-sent write lands on
the same record: :func:`replace_part` stores a part whole (a tool part's state
moves pending -> running -> completed | error), :func:`append_text` grows a
text part by a delta at a character offset -- a gap is refused
(:class:`~orchestrator.domain.errors.TextGap`, the sender re-sends from the
stored length), text already stored is skipped, so a retried write never
duplicates text. Part types this version does not know are kept as
:class:`OpaquePart` (type and bounded JSON), never dropped. Both functions are
pure: a backend loads the part, calls them and saves what they return.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import ClassVar, NewType

import attrs

from orchestrator.domain.chat import (
    MAX_REPLY_LENGTH,
    ChatChunk,
    ChatMessage,
    ensure_streaming,
    validate_chunk,
)
from orchestrator.domain.diffs import (
    MAX_DIFF_BYTES,
    MAX_DIFF_FILES,
    FileDiff,
    TurnDiffPart,
    is_binary_patch,
)
from orchestrator.domain.errors import Conflict, InvalidInput, PayloadTooLarge, TextGap
from orchestrator.domain.ids import ChatSessionId, MessageId

#: The agent's ID of a part (opencode: ``prt_…``), unique within its reply.
PartId = NewType("PartId", str)

MAX_PART_ID_LENGTH = 200
#: Characters of one text or reasoning part: as many as a whole reply (up to 4 MB of UTF-8,
#: which Convex keeps across documents for both kinds).
MAX_PART_TEXT = MAX_REPLY_LENGTH
#: UTF-8 bytes of a tool's output kept per part; the full size is recorded.
MAX_TOOL_OUTPUT_BYTES = 64 * 1024
#: UTF-8 bytes of a tool's input (JSON) kept per part.
MAX_TOOL_INPUT_BYTES = 64 * 1024
#: UTF-8 bytes of the JSON kept for a part of an unknown type.
MAX_OPAQUE_BYTES = 16 * 1024
#: Characters of a short field (tool name, title, error, file name, agent …).
MAX_PART_FIELD = 10_000
#: Items kept of an agent's todo list.
MAX_TODOS = 200
#: Events (chunks and parts) read at once by a stream; Convex's CHUNK_PAGE is the same.
EVENT_PAGE = 500
#: Parts listed at once.
MAX_LISTED_PARTS = 2000


class TextKind(enum.StrEnum):
    """Which kind of part a text delta grows."""

    TEXT = "text"
    REASONING = "reasoning"


class ToolStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    ERROR = "error"


@attrs.frozen
class TextPart:
    """Text of the reply the user reads."""

    TYPE: ClassVar[str] = "text"
    text: str = ""


@attrs.frozen
class ReasoningPart:
    """The model's reasoning, shown apart from the reply."""

    TYPE: ClassVar[str] = "reasoning"
    text: str = ""


@attrs.frozen
class ToolState:
    """Where a tool call stands; replaced whole as it moves."""

    status: ToolStatus
    #: The tool's arguments as JSON text.
    input: str = "{}"
    title: str | None = None
    #: At most :data:`MAX_TOOL_OUTPUT_BYTES` of the output.
    output: str | None = None
    #: UTF-8 bytes of the whole output, however much of it is kept.
    output_size: int = 0
    error: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def truncated(self) -> bool:
        return self.output is not None and self.output_size > len(self.output.encode())


@attrs.frozen
class ToolPart:
    TYPE: ClassVar[str] = "tool"
    tool: str
    call_id: str
    state: ToolState


@attrs.frozen
class FilePart:
    TYPE: ClassVar[str] = "file"
    mime: str
    url: str
    filename: str | None = None


@attrs.frozen
class PatchPart:
    """Files the agent changed in a step, with the snapshot hash before them."""

    TYPE: ClassVar[str] = "patch"
    hash: str
    files: tuple[str, ...] = ()


@attrs.frozen
class StepStartPart:
    TYPE: ClassVar[str] = "step-start"


@attrs.frozen
class Tokens:
    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0


@attrs.frozen
class StepFinishPart:
    """One model call ended: why, what it cost, how many tokens it used."""

    TYPE: ClassVar[str] = "step-finish"
    reason: str = ""
    cost: float = 0.0
    tokens: Tokens = Tokens()


@attrs.frozen
class SubtaskPart:
    TYPE: ClassVar[str] = "subtask"
    agent: str
    description: str = ""
    prompt: str = ""


@attrs.frozen
class AgentPart:
    TYPE: ClassVar[str] = "agent"
    name: str


@attrs.frozen
class Todo:
    """One item of the agent's todo list (opencode: pending, in_progress, completed, cancelled)."""

    content: str
    status: str = "pending"
    priority: str = "medium"


@attrs.frozen
class TodoListPart:
    """The agent's whole todo list as it stood after a change (opencode's ``todo.updated``).

    Not an opencode part: the machine stores each ``todo.updated`` of a turn as this part of
    the reply, so the list rides the session's stream; the latest one is the current list.
    """

    TYPE: ClassVar[str] = "todo-list"
    todos: tuple[Todo, ...] = ()


@attrs.frozen
class OpaquePart:
    """A part of a type this version does not know: its type and (bounded) JSON."""

    type: str
    #: The part as JSON text, or ``""`` when it was over :data:`MAX_OPAQUE_BYTES`.
    data: str
    #: UTF-8 bytes of the whole JSON.
    size: int


PartBody = (
    TextPart
    | ReasoningPart
    | ToolPart
    | FilePart
    | PatchPart
    | StepStartPart
    | StepFinishPart
    | SubtaskPart
    | AgentPart
    | TodoListPart
    | TurnDiffPart
    | OpaquePart
)

#: The part classes by their opencode type.
PART_TYPES: dict[str, type[PartBody]] = {
    cls.TYPE: cls
    for cls in (
        TextPart,
        ReasoningPart,
        ToolPart,
        FilePart,
        PatchPart,
        StepStartPart,
        StepFinishPart,
        SubtaskPart,
        AgentPart,
        TodoListPart,
        TurnDiffPart,
    )
}


def part_type(body: PartBody) -> str:
    """The opencode type of a part (``text``, ``tool``, ``step-finish`` …)."""
    return body.type if isinstance(body, OpaquePart) else body.TYPE


@attrs.frozen
class MessagePart:
    """One part of a reply, in the order the agent created them."""

    part_id: PartId
    message_id: MessageId
    chat_session_id: ChatSessionId
    #: Order within the session: parts of later replies come later.
    position: int
    body: PartBody
    updated_at: datetime
    #: The session's sequence at the part's last change (shared with its chunks), so a
    #: reader resumes parts and chunks from one number.
    sequence: int = 0

    @property
    def type(self) -> str:
        return part_type(self.body)


def clip_utf8(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 encoding fits in ``limit`` bytes."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode(errors="ignore")


def _short(value: str) -> str:
    return value[:MAX_PART_FIELD]


def _short_or_none(value: str | None) -> str | None:
    return None if value is None else _short(value)


def opaque(type_: str, data: str) -> OpaquePart:
    """Keep a part of an unknown type: its JSON if small enough, its size always."""
    size = len(data.encode())
    return OpaquePart(_short(type_) or "unknown", data if size <= MAX_OPAQUE_BYTES else "", size)


def bound_body(body: PartBody) -> PartBody:
    """``body`` with every field within its bound: tool output truncated, size recorded."""
    if isinstance(body, TextPart | ReasoningPart):
        if len(body.text) > MAX_PART_TEXT:
            raise PayloadTooLarge(f"A text part must be at most {MAX_PART_TEXT} characters.")
        return body
    if isinstance(body, ToolPart):
        state = body.state
        output = state.output
        size = max(state.output_size, len(output.encode())) if output is not None else 0
        state = attrs.evolve(
            state,
            input=state.input if len(state.input.encode()) <= MAX_TOOL_INPUT_BYTES else "{}",
            title=_short_or_none(state.title),
            output=None if output is None else clip_utf8(output, MAX_TOOL_OUTPUT_BYTES),
            output_size=size,
            error=_short_or_none(state.error),
        )
        return ToolPart(_short(body.tool), _short(body.call_id), state)
    if isinstance(body, FilePart):
        # A data: URL can hold a whole image; keep only a bounded one.
        url = body.url if len(body.url) <= MAX_PART_FIELD else ""
        return FilePart(_short(body.mime), url, _short_or_none(body.filename))
    if isinstance(body, PatchPart):
        return PatchPart(_short(body.hash), tuple(_short(f) for f in body.files[:1000]))
    if isinstance(body, SubtaskPart):
        return SubtaskPart(_short(body.agent), _short(body.description), _short(body.prompt))
    if isinstance(body, AgentPart):
        return AgentPart(_short(body.name))
    if isinstance(body, TodoListPart):
        todos = body.todos[:MAX_TODOS]
        return TodoListPart(
            tuple(Todo(_short(t.content), t.status[:40], t.priority[:40]) for t in todos)
        )
    if isinstance(body, TurnDiffPart):
        return _bound_diff(body)
    if isinstance(body, OpaquePart):
        if body.data and len(body.data.encode()) > MAX_OPAQUE_BYTES:
            return opaque(body.type, body.data)
        return body
    return body


def _bound_diff(diff: TurnDiffPart) -> TurnDiffPart:
    """The turn's files with their patches sharing :data:`MAX_DIFF_BYTES`, in order."""
    budget = MAX_DIFF_BYTES
    files = []
    for f in diff.files[:MAX_DIFF_FILES]:
        binary = f.binary or is_binary_patch(f.patch)
        size = max(f.patch_size, len(f.patch.encode()))
        patch = "" if binary else clip_utf8(f.patch, budget)
        budget -= len(patch.encode())
        files.append(
            FileDiff(
                _short(f.file),
                f.status[:40],
                max(0, f.additions),
                max(0, f.deletions),
                patch,
                size,
                binary,
            )
        )
    more = max(0, diff.more_files) + max(0, len(diff.files) - MAX_DIFF_FILES)
    return TurnDiffPart(diff.agent_message_id[:MAX_PART_ID_LENGTH], tuple(files), more)


def validate_part_id(part_id: str) -> PartId:
    """Return ``part_id`` if it is a usable agent part ID: present and bounded."""
    if not part_id.strip() or len(part_id) > MAX_PART_ID_LENGTH:
        raise InvalidInput(f"A part ID must be 1 to {MAX_PART_ID_LENGTH} characters.")
    return PartId(part_id)


def replace_part(
    stored: MessagePart | None,
    reply: ChatMessage,
    part_id: PartId,
    body: PartBody,
    next_position: int,
    now: datetime,
) -> MessagePart:
    """The part stored whole; text already streamed into it is never shortened.

    ``next_position`` is where a new part goes (after every part of the session).
    """
    ensure_streaming(reply)
    body = bound_body(body)
    if stored is None:
        return MessagePart(
            part_id, reply.message_id, reply.chat_session_id, next_position, body, now
        )
    if (
        isinstance(body, TextPart | ReasoningPart)
        and type(stored.body) is type(body)
        and isinstance(stored.body, TextPart | ReasoningPart)
        and len(stored.body.text) > len(body.text)
    ):
        body = stored.body  # a stale whole copy arriving after newer deltas
    return attrs.evolve(stored, body=body, updated_at=now)


@attrs.frozen
class TextChange:
    """What :func:`append_text` did to a part, and what a backend must write for it."""

    part: MessagePart
    #: The text actually added (``""`` when every character was already stored).
    added: str
    #: Whether the part is new or grew, so the backend must save it.
    changed: bool

    @property
    def chunk_text(self) -> str:
        """Text to stream as a chat chunk too: what a ``text`` part gained."""
        return self.added if isinstance(self.part.body, TextPart) else ""

    @property
    def chunk_place(self) -> tuple[str, int]:
        """The part the chunk grows and the character its text starts at."""
        length = len(self.part.body.text) if isinstance(self.part.body, TextPart) else 0
        return self.part.part_id, length - len(self.added)

    def result(self, chunk: ChatChunk | None) -> TextAppended:
        """The answer to the machine, with the chunk the backend wrote (if any)."""
        length = (
            len(self.part.body.text) if isinstance(self.part.body, TextPart | ReasoningPart) else 0
        )
        return TextAppended(self.part.part_id, self.part.message_id, length, len(self.added), chunk)


def append_text(
    stored: MessagePart | None,
    reply: ChatMessage,
    part_id: PartId,
    kind: TextKind,
    offset: int,
    text: str,
    next_position: int,
    now: datetime,
) -> TextChange:
    """The part with ``text`` placed at ``offset``, and the text actually added.

    A delta past the stored end raises :class:`TextGap`; text already stored is
    skipped (``""`` added when all of it was), so a re-sent delta changes nothing.
    """
    created = stored is None
    delta = TextAppend(part_id, offset, text, kind)
    part = text_part(stored, reply, delta, next_position, now)
    current = part.body
    assert isinstance(current, TextPart | ReasoningPart)
    added = text_added(len(current.text), offset, text)
    if not added:
        return TextChange(part, "", created)
    grown = attrs.evolve(current, text=current.text + added)
    return TextChange(attrs.evolve(part, body=grown, updated_at=now), added, True)


def text_part(
    stored: MessagePart | None,
    reply: ChatMessage,
    delta: TextAppend,
    next_position: int,
    now: datetime,
) -> MessagePart:
    """The part ``delta`` grows (a new empty one if none is stored), after checking the delta."""
    kind = delta.kind
    validate_chunk(delta.text)
    ensure_streaming(reply)
    if delta.offset < 0:
        raise InvalidInput("A text offset must not be negative.")
    if stored is None:
        body: PartBody = TextPart() if kind is TextKind.TEXT else ReasoningPart()
        stored = MessagePart(
            PartId(delta.part_id),
            reply.message_id,
            reply.chat_session_id,
            next_position,
            body,
            now,
        )
    current = stored.body
    if not isinstance(current, TextPart | ReasoningPart) or kind.value != current.TYPE:
        raise Conflict(f"That part is not a {kind.value} part.")
    return stored


def text_added(length: int, offset: int, text: str) -> str:
    """What a delta at ``offset`` adds to a part holding ``length`` characters.

    A delta past the end raises :class:`TextGap`; characters already held are
    skipped; the part may not grow past :data:`MAX_PART_TEXT`.
    """
    if offset > length:
        raise TextGap(
            f"This delta starts at character {offset} but the part holds {length};"
            f" send again from character {length}.",
            stored_length=length,
        )
    added = text[length - offset :]
    if added and length + len(added) > MAX_PART_TEXT:
        raise PayloadTooLarge(f"A text part must be at most {MAX_PART_TEXT} characters.")
    return added


@attrs.frozen
class TextAppend:
    """A text delta the machine sends: ``text`` placed at ``offset`` of part ``part_id``."""

    part_id: str
    #: Characters of the part before ``text``; text already stored there is skipped.
    offset: int
    text: str
    #: Reply text, or the model's reasoning (which streams no chat chunk).
    kind: TextKind = TextKind.TEXT


@attrs.frozen
class TextAppended:
    """What a text delta did: the part's length after it, and the chunk it streamed."""

    part_id: PartId
    message_id: MessageId
    #: Characters the part holds now; the next delta starts here.
    length: int
    #: Characters this delta added (0 for a re-sent delta).
    added: int
    #: The chat chunk that carries the added text of a ``text`` part, if any.
    chunk: ChatChunk | None = None


#: What a session's stream carries after a sequence: reply text as chunks, other parts whole.
StreamEvent = ChatChunk | MessagePart


def merge_events(chunks: list[ChatChunk], parts: list[MessagePart], page: int) -> list[StreamEvent]:
    """Chunks and parts read together (one snapshot, pages of ``page``), in sequence order.

    A full page may stop short of the other kind's items: those past its end are
    left for the next read, so nothing after the last event returned is skipped.
    """
    events: list[StreamEvent] = sorted([*chunks, *parts], key=lambda e: e.sequence)
    ends = [kind[-1].sequence for kind in (chunks, parts) if len(kind) >= page]
    if ends:
        events = [e for e in events if e.sequence <= min(ends)]
    return events

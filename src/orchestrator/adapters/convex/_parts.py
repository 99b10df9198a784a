"""Parts of replies on Convex (``convex/parts.ts``), through the one part converter."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

from orchestrator.adapters.convex import _wire as wire
from orchestrator.adapters.convex._calls import ConvexCalls, machine_args
from orchestrator.adapters.convex._pages import follow_sequence
from orchestrator.adapters.parts_json import body_to_row
from orchestrator.adapters.records import from_document
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.paging import MAX_PAGE
from orchestrator.domain.parts import (
    EVENT_PAGE,
    MAX_LISTED_PARTS,
    MessagePart,
    PartBody,
    PartId,
    StreamEvent,
    TextAppend,
    TextAppended,
    bound_body,
    merge_events,
    validate_part_id,
)


def _part(raw: dict[str, Any]) -> MessagePart:
    return from_document(raw, MessagePart)


#: Reads the segments of a long part's text: (message ID, part ID, index) -> texts.
ReadPartSegments = Callable[[str, str, int], Awaitable[list[str]]]


async def _whole_part(raw: dict[str, Any], read: ReadPartSegments) -> MessagePart:
    """The part of ``raw`` with its whole text, its segments read if it has any (lib/text.ts)."""
    count = int(raw.get("textSegments") or 0)
    if count == 0:
        return _part(raw)
    pieces: list[str] = []
    while len(pieces) < count:
        found = await read(raw["messageId"], raw["partId"], len(pieces))
        if not found:  # deleted meanwhile
            break
        pieces.extend(found)
    return _part({**raw, "text": "".join(pieces)})


class PartCalls(ConvexCalls):
    """The parts half of :class:`~orchestrator.adapters.convex.ConvexBackend`."""

    def _part_reader(self, user: UserId, session_id: ChatSessionId) -> ReadPartSegments:
        async def read(message_id: str, part_id: str, index: int) -> list[str]:
            args = self._server(
                userId=user,
                chatSessionId=session_id,
                messageId=message_id,
                partId=part_id,
                fromIndex=float(index),
            )
            return list(await self._call("query", "parts:text", args))

        return read

    async def _events(
        self, user: UserId, session_id: ChatSessionId, raw: dict[str, Any]
    ) -> list[StreamEvent]:
        chunks = [wire.chat_chunk(chunk) for chunk in raw["chunks"]]
        read = self._part_reader(user, session_id)
        parts = [await _whole_part(part, read) for part in raw["parts"]]
        return merge_events(chunks, parts, EVENT_PAGE)

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        body = bound_body(body)
        type_, text, data = body_to_row(body)
        args = machine_args(
            token,
            messageId=message_id,
            partId=validate_part_id(part_id),
            type=type_,
            text=text,
            data=data,
        )
        raw = await self._call("mutation", "parts:save", args)
        if raw.get("textSegments"):  # kept in segments: its text is the one just sent
            raw = {**raw, "text": text}
        return _part(raw)

    async def append_part_text(
        self, token: MachineToken, message_id: MessageId, delta: TextAppend
    ) -> TextAppended:
        args = machine_args(
            token,
            messageId=message_id,
            partId=validate_part_id(delta.part_id),
            kind=delta.kind.value,
            offset=float(delta.offset),
            text=delta.text,
        )
        raw = await self._call("mutation", "parts:appendText", args)
        chunk = None if raw["chunk"] is None else wire.chat_chunk(raw["chunk"])
        return TextAppended(
            PartId(raw["partId"]),
            MessageId(raw["messageId"]),
            int(raw["length"]),
            int(raw["added"]),
            chunk,
        )

    def watch_events(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[StreamEvent], None]:
        async def after(last: int) -> AsyncGenerator[list[StreamEvent], None]:
            args = self._server(userId=user, chatSessionId=session_id, afterSequence=last)
            async with aclosing(self._watch("parts:eventsAfter", args, dict)) as pages:
                async for found in pages:
                    yield await self._events(user, session_id, found)

        return follow_sequence(after, after_sequence)

    async def list_parts(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId | None = None
    ) -> list[MessagePart]:
        args = self._server(userId=user, chatSessionId=session_id, messageId=message_id)
        found: list[Any] = []
        more = True
        # Pages cut by size as well as count (parts.ts listPage), up to MAX_LISTED_PARTS.
        while more and len(found) < MAX_LISTED_PARTS:
            after = {"afterPosition": float(found[-1]["position"])} if found else {}
            page = await self._call("query", "parts:listPage", {**args, **after, "limit": MAX_PAGE})
            found.extend(page["parts"])
            more = bool(page["hasMore"]) and bool(page["parts"])
        read = self._part_reader(user, session_id)
        return [await _whole_part(raw, read) for raw in found[:MAX_LISTED_PARTS]]

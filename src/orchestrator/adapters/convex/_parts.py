"""Parts of replies on Convex (``convex/parts.ts``), through the one part converter."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.adapters.convex import _wire as wire
from orchestrator.adapters.convex._transport import Kind
from orchestrator.adapters.parts_json import body_from_row, body_to_row
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.parts import (
    EVENT_PAGE,
    MessagePart,
    PartBody,
    PartId,
    StreamEvent,
    TextAppended,
    TextKind,
    bound_body,
    merge_events,
    validate_part_id,
)

T = TypeVar("T")


def _part(raw: dict[str, Any]) -> MessagePart:
    return MessagePart(
        PartId(raw["partId"]),
        MessageId(raw["messageId"]),
        ChatSessionId(raw["chatSessionId"]),
        int(raw["position"]),
        body_from_row(raw["text"], raw["data"]),
        wire._when(raw["updatedAt"]),
        int(raw["sequence"]),
    )


def _events(raw: dict[str, Any]) -> list[StreamEvent]:
    chunks = [wire.chat_chunk(chunk) for chunk in raw["chunks"]]
    return merge_events(chunks, [_part(part) for part in raw["parts"]], EVENT_PAGE)


class PartCalls:
    """The parts half of :class:`~orchestrator.adapters.convex.ConvexBackend`."""

    if TYPE_CHECKING:  # provided by ConvexBackend

        async def _call(self, kind: Kind, path: str, args: dict[str, Any]) -> Any: ...

        def _server(self, **args: Any) -> dict[str, Any]: ...

        def _watch(
            self, path: str, args: dict[str, Any], decode: Callable[[Any], T]
        ) -> AsyncGenerator[T, None]: ...

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        type_, text, data = body_to_row(bound_body(body))
        args = {
            "machineId": token.machine_id,
            "machineSecret": token.secret,
            "messageId": message_id,
            "partId": validate_part_id(part_id),
            "type": type_,
            "text": text,
            "data": data,
        }
        return _part(await self._call("mutation", "parts:save", args))

    async def append_part_text(
        self,
        token: MachineToken,
        message_id: MessageId,
        part_id: str,
        offset: int,
        text: str,
        kind: TextKind = TextKind.TEXT,
    ) -> TextAppended:
        args = {
            "machineId": token.machine_id,
            "machineSecret": token.secret,
            "messageId": message_id,
            "partId": validate_part_id(part_id),
            "kind": kind.value,
            "offset": float(offset),
            "text": text,
        }
        raw = await self._call("mutation", "parts:appendText", args)
        chunk = None if raw["chunk"] is None else wire.chat_chunk(raw["chunk"])
        return TextAppended(
            PartId(raw["partId"]),
            MessageId(raw["messageId"]),
            int(raw["length"]),
            int(raw["added"]),
            chunk,
        )

    async def watch_events(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[StreamEvent], None]:
        # A cursor like watch_chunks: move the watch on each time a page arrives.
        last, first = after_sequence, True
        while True:
            args = self._server(userId=user, chatSessionId=session_id, afterSequence=last)
            pages = self._watch("parts:eventsAfter", args, _events)
            async with aclosing(pages):
                async for page in pages:
                    if page or first:
                        first = False
                        yield page
                    if page:
                        last = page[-1].sequence
                        break
                else:
                    return  # the backend closed

    async def list_parts(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId | None = None
    ) -> list[MessagePart]:
        args = self._server(userId=user, chatSessionId=session_id, messageId=message_id)
        return [_part(raw) for raw in await self._call("query", "parts:list", args)]

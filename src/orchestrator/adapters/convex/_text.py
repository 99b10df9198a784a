"""Messages whose content is too long for one Convex document, joined again (``lib/text.ts``).

Such a message comes back with ``content: ""`` and ``contentSegments: n``; its
text is read in bounded runs of segments, by the owner or by the machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from orchestrator.adapters.convex import _wire as wire
from orchestrator.adapters.convex._calls import ConvexCalls, machine_args
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.ids import ChatSessionId, MachineToken, UserId

#: Reads the segments of a message from an index on: (message ID, index) -> texts.
ReadSegments = Callable[[str, int], Awaitable[list[str]]]


async def whole_message(raw: dict[str, Any], read: ReadSegments) -> ChatMessage:
    """The message of ``raw`` with its whole content, its segments read if it has any."""
    count = int(raw.get("contentSegments") or 0)
    if count == 0:
        return wire.chat_message(raw)
    pieces: list[str] = []
    while len(pieces) < count:
        found = await read(raw["messageId"], len(pieces))
        if not found:  # deleted meanwhile (its session went away)
            break
        pieces.extend(found)
    return wire.chat_message({**raw, "content": "".join(pieces)})


class LongTextCalls(ConvexCalls):
    """The long-content half of :class:`~orchestrator.adapters.convex.ConvexBackend`."""

    async def _owners_messages(
        self, user: UserId, session_id: ChatSessionId, found: Iterable[dict[str, Any]]
    ) -> list[ChatMessage]:
        async def read(message_id: str, index: int) -> list[str]:
            args = self._server(
                userId=user, chatSessionId=session_id, messageId=message_id, fromIndex=float(index)
            )
            return list(await self._call("query", "chat:messageText", args))

        return [await whole_message(raw, read) for raw in found]

    async def _machines_messages(
        self, token: MachineToken, found: Iterable[dict[str, Any]]
    ) -> list[ChatMessage]:
        async def read(message_id: str, index: int) -> list[str]:
            args = machine_args(token, messageId=message_id, fromIndex=float(index))
            return list(await self._call("query", "chatMachine:messageText", args))

        return [await whole_message(raw, read) for raw in found]

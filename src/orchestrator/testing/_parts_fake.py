"""Parts of replies for the in-memory fake: a dict of records and the domain's rules."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import attrs

from orchestrator.adapters.cursor import follow_cursor
from orchestrator.domain import parts as rules
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.parts import MessagePart, PartBody, StreamEvent, TextAppend, TextAppended
from orchestrator.testing._chat_fake_machine import ChatMachineFake


class PartsFake(ChatMachineFake):
    """Parts: the machine stores them, the owner lists them."""

    def _load_part(
        self, message: ChatMessage, part_id: rules.PartId
    ) -> tuple[MessagePart | None, int]:
        stored = self.parts.get((message.message_id, part_id))
        if stored is not None:
            return stored, stored.position
        positions = [
            p.position for p in self.parts.values() if p.chat_session_id == message.chat_session_id
        ]
        return None, max(positions, default=0) + 1

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        key = rules.validate_part_id(part_id)
        message, _ = self._machine_message(token, message_id)
        stored, position = self._load_part(message, key)
        part = rules.replace_part(stored, message, key, body, position, self._now())
        part = attrs.evolve(part, sequence=self._next_sequence(message.chat_session_id))
        self.parts[(message_id, key)] = part
        await self._commit()
        return part

    async def append_part_text(
        self, token: MachineToken, message_id: MessageId, delta: TextAppend
    ) -> TextAppended:
        key = rules.validate_part_id(delta.part_id)
        message, session = self._machine_message(token, message_id)
        stored, position = self._load_part(message, key)
        change = rules.append_text(
            stored, message, key, delta.kind, delta.offset, delta.text, position, self._now()
        )
        chunk_text = change.chunk_text
        chunk = (
            self._insert_chunk(session, message_id, chunk_text, change.chunk_place)
            if chunk_text
            else None
        )
        if change.changed:  # under its chunk's sequence, so both resume from one number
            sequence = (
                self._next_sequence(session.chat_session_id) if chunk is None else chunk.sequence
            )
            self.parts[(message_id, key)] = attrs.evolve(change.part, sequence=sequence)
        await self._commit()
        return change.result(chunk)

    async def _events_after(
        self, user: UserId, session_id: ChatSessionId, after: int
    ) -> list[StreamEvent]:
        self._user_session(user, session_id)
        parts = [
            p
            for p in self.parts.values()
            if p.chat_session_id == session_id and p.sequence > after and p.type != "text"
        ]
        return rules.merge_events(self._chunks_of(session_id, after=after), parts, 10**9)

    def watch_events(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[StreamEvent], None]:
        return follow_cursor(
            self._wakeups(), lambda last: self._events_after(user, session_id, last), after_sequence
        )

    async def list_parts(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId | None = None
    ) -> list[MessagePart]:
        self._user_session(user, session_id)
        found = [
            p
            for p in self.parts.values()
            if p.chat_session_id == session_id and message_id in (None, p.message_id)
        ]
        return sorted(found, key=lambda p: p.position)[: rules.MAX_LISTED_PARTS]

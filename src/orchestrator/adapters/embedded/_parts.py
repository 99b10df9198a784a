"""Parts of replies on the embedded backend: load, apply the domain rule, save.

The rules (what a re-sent delta or a stale whole copy does, bounds) are
:mod:`orchestrator.domain.parts`'; this module only reads and writes rows in
one ``BEGIN IMMEDIATE`` transaction per call. A text delta of a ``text`` part
writes its chunk in that same transaction, so the chat stream and the part
never disagree and a retried delta adds neither twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiosqlite
import attrs

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._chat import ChatUserSide, chunks_after
from orchestrator.adapters.embedded._chat_machine import ChatMachineSide
from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.parts_json import body_to_row
from orchestrator.adapters.records import from_row
from orchestrator.domain.chat import ChatMessage, ChatSession
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.parts import (
    EVENT_PAGE,
    MAX_LISTED_PARTS,
    MessagePart,
    PartBody,
    PartId,
    StreamEvent,
    TextAppend,
    TextAppended,
    append_text,
    merge_events,
    replace_part,
    validate_part_id,
)

_PARTS = """
    SELECT * FROM message_parts WHERE chat_session_id = ?
    AND (? IS NULL OR message_id = ?) ORDER BY position LIMIT ?
"""


def _part(row: aiosqlite.Row) -> MessagePart:
    return from_row(row, MessagePart)


async def _events_after(
    tx: Tx, session_id: ChatSessionId, after: int, limit: int
) -> list[StreamEvent]:
    """The session's first ``limit`` chunks and non-text parts after sequence ``after``."""
    chunks = await chunks_after(tx, session_id, after, limit)
    parts = await tx.each(
        _part,
        "SELECT * FROM message_parts WHERE chat_session_id = ? AND sequence > ?"
        " AND type != 'text' ORDER BY sequence LIMIT ?",
        session_id,
        after,
        limit,
    )
    return merge_events(chunks, parts, limit)


class PartSide(ChatUserSide, ChatMachineSide):
    """Parts: the machine stores them, the owner lists them."""

    async def _load_part(
        self, tx: Tx, message: ChatMessage, part_id: PartId
    ) -> tuple[MessagePart | None, int]:
        """The stored part (or None) and the position a new part of the session takes."""
        row = await tx.one(
            "SELECT * FROM message_parts WHERE message_id = ? AND part_id = ?",
            message.message_id,
            part_id,
        )
        if row is not None:
            return _part(row), row["position"]
        last = await tx.one(
            "SELECT coalesce(max(position), 0) AS last FROM message_parts"
            " WHERE chat_session_id = ?",
            message.chat_session_id,
        )
        assert last is not None
        return None, last["last"] + 1

    async def _save_part(
        self, tx: Tx, part: MessagePart, session: ChatSession, sequence: int | None = None
    ) -> MessagePart:
        """Store ``part`` under ``sequence``, or the session's next one."""
        if sequence is None:
            row = await tx.one(
                "UPDATE chat_sessions SET last_sequence = last_sequence + 1"
                " WHERE chat_session_id = ? RETURNING last_sequence",
                session.chat_session_id,
            )
            assert row is not None
            sequence = int(row["last_sequence"])
        part = attrs.evolve(part, sequence=sequence)
        type_, text, data = body_to_row(part.body)
        values = {
            "message_id": part.message_id,
            "part_id": part.part_id,
            "chat_session_id": part.chat_session_id,
            "position": part.position,
            "type": type_,
            "text": text,
            "data": data,
            "updated_at": rows.to_ms(part.updated_at),
            "sequence": part.sequence,
        }
        key, first = ("message_id", "part_id"), ("chat_session_id", "position")
        await tx.upsert("message_parts", values, key=key, keep=first)
        tx.touch(("chunks", session.chat_session_id))
        return part

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        key = validate_part_id(part_id)
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            stored, position = await self._load_part(tx, message, key)
            part = replace_part(stored, message, key, body, position, self._clock.now())
            return await self._save_part(tx, part, session)

    async def append_part_text(
        self, token: MachineToken, message_id: MessageId, delta: TextAppend
    ) -> TextAppended:
        key = validate_part_id(delta.part_id)
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            stored, position = await self._load_part(tx, message, key)
            change = append_text(
                stored,
                message,
                key,
                delta.kind,
                delta.offset,
                delta.text,
                position,
                self._clock.now(),
            )
            chunk_text = change.chunk_text
            chunk = (
                await self._insert_chunk(tx, session, message_id, chunk_text, change.chunk_place)
                if chunk_text
                else None
            )
            if change.changed:  # under its chunk's sequence, so both resume from one number
                sequence = None if chunk is None else chunk.sequence
                await self._save_part(tx, change.part, session, sequence)
            return change.result(chunk)

    def watch_events(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[StreamEvent], None]:
        # A cursor like watch_chunks: a replaced part comes again under its new sequence.
        return self._follow_session(user, session_id, after_sequence, _events_after, EVENT_PAGE)

    async def list_parts(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId | None = None
    ) -> list[MessagePart]:
        params = (session_id, message_id, message_id, MAX_LISTED_PARTS)
        return await self._session_read(
            user, session_id, lambda tx: tx.each(_part, _PARTS, *params)
        )

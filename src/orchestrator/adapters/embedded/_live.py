"""The durable half of the live relay on the embedded backend: numbered events in one write.

The server numbers events as it shows them (:mod:`orchestrator.application.live`);
here a batch is stored in one ``BEGIN IMMEDIATE`` transaction under those numbers,
each text delta as its own chunk row, so what a browser saw live and what it reads
back after a reconnect are the same events under the same sequences.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.adapters.embedded._parts import PartSide, _part
from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain.chat import ChatMessage, ChatSession, ensure_streaming
from orchestrator.domain.errors import NotFound
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId
from orchestrator.domain.live import LiveText, ReplyState, SequencedEvent
from orchestrator.domain.parts import (
    MAX_LISTED_PARTS,
    MessagePart,
    PartId,
    append_text,
    replace_part,
    validate_part_id,
)

NOT_IN_SESSION = "That message is not in this chat session."


class LiveSide(PartSide):
    """Implements :class:`orchestrator.domain.ports.LiveEventStore`."""

    async def _session_message(
        self, tx: Tx, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> tuple[ChatMessage, ChatSession]:
        message, session = await self._machine_message(tx, token.machine_id, message_id)
        if message.chat_session_id != session_id:
            raise NotFound(NOT_IN_SESSION)
        return message, session

    async def reply_state(
        self, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> ReplyState:
        async with self._as_machine(token, write=False) as (tx, _):
            message, _session = await self._session_message(tx, token, session_id, message_id)
            ensure_streaming(message)
            found = await tx.all(
                "SELECT * FROM message_parts WHERE message_id = ? ORDER BY position LIMIT ?",
                message_id,
                MAX_LISTED_PARTS,
            )
            last = await tx.one(
                "SELECT coalesce(max(position), 0) AS last FROM message_parts"
                " WHERE chat_session_id = ?",
                session_id,
            )
            assert last is not None
            return ReplyState(message, tuple(_part(row) for row in found), last["last"] + 1)

    async def last_sequence(self, session_id: ChatSessionId) -> int:
        async with self._store.transaction(write=False) as tx:
            row = await tx.one(
                "SELECT last_sequence FROM chat_sessions WHERE chat_session_id = ?", session_id
            )
            return 0 if row is None else int(row["last_sequence"])

    async def store_events(self, token: MachineToken, events: Sequence[SequencedEvent]) -> None:
        if not events:
            return
        now = self._clock.now()
        async with self._as_machine(token) as (tx, _):
            replies: dict[MessageId, tuple[ChatMessage, ChatSession]] = {}
            parts: dict[tuple[MessageId, PartId], tuple[MessagePart | None, int]] = {}
            top: dict[ChatSessionId, int] = {}
            for item in events:
                event = item.event
                reply = replies.get(event.message_id)
                if reply is None:
                    reply = await self._session_message(
                        tx, token, event.session_id, event.message_id
                    )
                    replies[event.message_id] = reply
                message, session = reply
                if message.chat_session_id != event.session_id:
                    raise NotFound(NOT_IN_SESSION)
                key = validate_part_id(event.part_id)
                known = parts.get((event.message_id, key))
                stored, position = known or await self._load_part(tx, message, key)
                if isinstance(event, LiveText):
                    change = append_text(
                        stored, message, key, event.kind, event.offset, event.text, position, now
                    )
                    if change.chunk_text:
                        await self._insert_chunk(
                            tx,
                            session,
                            message.message_id,
                            change.chunk_text,
                            change.chunk_place,
                            (item.sequence, item.chunk_id),
                        )
                    part = change.part
                    changed = change.changed
                else:
                    part = replace_part(stored, message, key, event.body, position, now)
                    changed = stored is None or part.body != stored.body
                if changed:
                    part = await self._save_part(tx, part, session, item.sequence)
                    parts[(event.message_id, key)] = (part, part.position)
                top[session.chat_session_id] = max(
                    item.sequence, top.get(session.chat_session_id, 0)
                )
            for session_id, sequence in top.items():
                # The live relay showed these events already: no reader re-reads them.
                tx.topics.discard(("chunks", session_id))
                await tx.run(
                    "UPDATE chat_sessions SET last_sequence = max(last_sequence, ?),"
                    " last_activity = ? WHERE chat_session_id = ?",
                    sequence,
                    self._now(),
                    session_id,
                )

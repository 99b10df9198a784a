"""Chat on the embedded backend as a machine sees it: work to do, claims, streaming.

Every call is authenticated by the machine token and only reaches sessions of
that machine's workers (anything else is NotFound). Each rule that must hold
under concurrency -- a message claimed once, in order; one streaming reply per
session; chunk sequences -- is checked and written in one ``BEGIN IMMEDIATE``
transaction, and the partial unique index on streaming replies backs it up.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._chat import (
    NO_MESSAGE,
    NO_PERMISSION,
    NO_SESSION,
    load_message,
    load_permission,
    load_session,
    messages_of,
    save_permission,
    save_undo,
    streaming_reply,
    touch_session,
)
from orchestrator.adapters.embedded._chat_work import session_work
from orchestrator.adapters.embedded._machine_side import MachineSide
from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain import replies, undo
from orchestrator.domain.chat import (
    GONE_REASON,
    ChatChunk,
    ChatMessage,
    ChatSession,
    MessageStatus,
    PermissionRequest,
    SessionUpdate,
    SessionWork,
    ensure_open,
    ensure_streaming,
    validate_chunk,
    validate_ending,
    validate_reply,
    validate_session_update,
)
from orchestrator.domain.ids import (
    ChatSessionId,
    ChunkId,
    MachineToken,
    MessageId,
    PermissionId,
)
from orchestrator.domain.live import Marks

_MACHINE_SESSION = """
    SELECT s.* FROM chat_sessions AS s JOIN workers AS w USING (worker_id)
    WHERE s.chat_session_id = ? AND w.machine_id = ?
"""
_MACHINE_MESSAGE = """
    SELECT m.* FROM chat_messages AS m
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE m.message_id = ? AND w.machine_id = ?
"""
_MACHINE_STREAMING = """
    SELECT m.* FROM chat_messages AS m
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE w.machine_id = ? AND m.status = 'streaming' ORDER BY m.timestamp, m.rowid
"""
_PERMISSIONS_OF = "SELECT * FROM permission_requests WHERE message_id = ?"
_QUESTIONS_OF = "SELECT * FROM question_requests WHERE message_id = ?"
_MACHINE_PERMISSION = """
    SELECT p.*, s.worker_id FROM permission_requests AS p
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE p.permission_id = ? AND w.machine_id = ?
"""


class ChatMachineSide(MachineSide):
    """The :class:`~orchestrator.domain.ports.ChatMachineBackend` half."""

    async def _machine_session(self, tx: Tx, machine_id: str, session_id: str) -> ChatSession:
        row = await tx.found(NO_SESSION, _MACHINE_SESSION, session_id, machine_id)
        return rows.chat_session(row)

    async def _machine_message(
        self, tx: Tx, machine_id: str, message_id: str
    ) -> tuple[ChatMessage, ChatSession]:
        row = await tx.found(NO_MESSAGE, _MACHINE_MESSAGE, message_id, machine_id)
        message = rows.chat_message(row)
        return message, await load_session(tx, message.chat_session_id)

    async def _work(self, token: MachineToken) -> list[SessionWork]:
        async with self._as_machine(token, write=False) as (tx, _):
            return await session_work(tx, token.machine_id)

    def watch_work(self, token: MachineToken) -> AsyncGenerator[list[SessionWork], None]:
        return self._store.feed.watch([("work", token.machine_id)], lambda: self._work(token))

    async def list_session_messages(
        self, token: MachineToken, session_id: ChatSessionId
    ) -> list[ChatMessage]:
        async with self._as_machine(token, write=False) as (tx, _):
            await self._machine_session(tx, token.machine_id, session_id)
            return await messages_of(tx, session_id)

    async def claim_message(self, token: MachineToken, message_id: MessageId) -> ChatMessage:
        reply_id = self._ids.new_id("message")
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            oldest = await tx.one(
                "SELECT message_id FROM chat_messages WHERE chat_session_id = ?"
                " AND status = 'pending' ORDER BY timestamp, rowid LIMIT 1",
                session.chat_session_id,
            )
            now = self._now()
            message, reply = replies.claim_message(
                message,
                session,
                await streaming_reply(tx, session.chat_session_id),
                None if oldest is None else MessageId(oldest["message_id"]),
                MessageId(reply_id),
                rows.from_ms(now),
            )
            await tx.run(
                "UPDATE chat_messages SET status = ? WHERE message_id = ?",
                message.status.value,
                message.message_id,
            )
            await rows.insert(tx, "chat_messages", reply)
            await tx.run(
                "UPDATE chat_sessions SET last_activity = ? WHERE chat_session_id = ?",
                now,
                session.chat_session_id,
            )
            touch_session(
                tx, session.worker_id, session.chat_session_id, token.machine_id, turns=True
            )
            return await load_message(tx, reply_id)

    async def append_chunk(
        self, token: MachineToken, message_id: MessageId, text: str
    ) -> ChatChunk:
        validate_chunk(text)
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            ensure_streaming(message)
            return await self._insert_chunk(tx, session, message_id, text)

    async def _insert_chunk(
        self,
        tx: Tx,
        session: ChatSession,
        message_id: MessageId,
        text: str,
        part: tuple[str, int] | None = None,
        numbered: tuple[int, str] | None = None,
        marks: Marks | None = None,
    ) -> ChatChunk:
        """Store a chunk under the session's next sequence, or the (sequence, ID) given.

        ``marks``: where each delta of a run stored as this one chunk started.
        """
        now = self._now()
        if numbered is None:
            chunk_id = ChunkId(self._ids.new_id("chunk"))
            # The write lock is held: reading and bumping the counter is atomic.
            row = await tx.one(
                "UPDATE chat_sessions SET last_sequence = last_sequence + 1, last_activity = ?"
                " WHERE chat_session_id = ? RETURNING last_sequence",
                now,
                session.chat_session_id,
            )
            assert row is not None
            sequence = int(row["last_sequence"])
        else:
            sequence, chunk_id = numbered[0], ChunkId(numbered[1])
        chunk = ChatChunk(
            chunk_id=chunk_id,
            message_id=message_id,
            chat_session_id=session.chat_session_id,
            chunk=text,
            sequence=sequence,
            timestamp=rows.from_ms(now),
            part_id=None if part is None else part[0],
            offset=None if part is None else part[1],
        )
        await tx.run(
            "INSERT INTO chat_chunks (chunk_id, message_id, chat_session_id, chunk, sequence,"
            " timestamp, part_id, part_offset, marks) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            chunk.chunk_id,
            message_id,
            chunk.chat_session_id,
            text,
            chunk.sequence,
            now,
            chunk.part_id,
            chunk.offset,
            None if marks is None else json.dumps(marks),
        )
        # Only chunk readers wake: a chunk changes no session list and no machine's
        # work (re-running those queries per chunk doubled the cost of every write).
        tx.touch(("chunks", session.chat_session_id))
        return chunk

    async def _finish(
        self,
        token: MachineToken,
        message_id: MessageId,
        status: MessageStatus,
        content: str | None,
        error: str | None,
    ) -> ChatMessage:
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            return await self._end_message(
                tx, token.machine_id, message, session, status, content, error
            )

    async def _end_message(
        self,
        tx: Tx,
        machine_id: str,
        message: ChatMessage,
        session: ChatSession,
        status: MessageStatus,
        content: str | None,
        error: str | None,
    ) -> ChatMessage:
        message_id = message.message_id
        if content is None:  # keep what was streamed so far
            parts = await tx.all(
                "SELECT chunk FROM chat_chunks WHERE message_id = ? ORDER BY sequence",
                message_id,
            )
            content = "".join(part["chunk"] for part in parts)
        asked = None if message.reply_to is None else await load_message(tx, message.reply_to)
        permissions = await tx.all(_PERMISSIONS_OF, message_id)
        questions = await tx.all(_QUESTIONS_OF, message_id)
        ended = replies.end_reply(
            message,
            asked,
            map(rows.permission, permissions),
            map(rows.question, questions),
            status,
            content,
            error,
        )
        now = self._now()
        for changed in (ended.reply, ended.asked):
            if changed is not None:
                await tx.run(
                    "UPDATE chat_messages SET status = ?, content = ?, error = ?"
                    " WHERE message_id = ?",
                    changed.status.value,
                    changed.content,
                    changed.error,
                    changed.message_id,
                )
        for request in ended.permissions:
            await save_permission(tx, request)
        for question in ended.questions:
            await tx.run(
                "UPDATE question_requests SET status = ? WHERE question_id = ?",
                question.status.value,
                question.question_id,
            )
        await tx.run(
            "UPDATE chat_sessions SET last_activity = ? WHERE chat_session_id = ?",
            now,
            session.chat_session_id,
        )
        if ended.preview is not None:
            await tx.run(
                "INSERT OR REPLACE INTO finished_replies (message_id, user_id, chat_session_id,"
                " status, preview, finished_at) VALUES (?, ?, ?, ?, ?, ?)",
                message_id,
                session.user_id,
                session.chat_session_id,
                status.value,
                ended.preview,
                now,
            )
        touch_session(
            tx, session.worker_id, session.chat_session_id, machine_id, turns=True, requests=True
        )
        return await load_message(tx, message_id)

    async def _end_replies_of_machine(self, tx: Tx, machine_id: str) -> list[MessageId]:
        """End the machine's streaming replies as interrupted, keeping the text they hold."""
        found = await tx.all(_MACHINE_STREAMING, machine_id)
        for row in found:
            message = rows.chat_message(row)
            session = await load_session(tx, message.chat_session_id)
            await self._end_message(
                tx, machine_id, message, session, MessageStatus.INTERRUPTED, None, GONE_REASON
            )
        return [MessageId(row["message_id"]) for row in found]

    async def complete_message(
        self, token: MachineToken, message_id: MessageId, content: str
    ) -> ChatMessage:
        validate_reply(content)
        return await self._finish(token, message_id, MessageStatus.COMPLETED, content, None)

    async def end_reply(
        self, token: MachineToken, message_id: MessageId, status: MessageStatus, reason: str
    ) -> ChatMessage:
        status, reason = validate_ending(status, reason)
        return await self._finish(token, message_id, status, None, reason)

    async def update_session(
        self, token: MachineToken, session_id: ChatSessionId, update: SessionUpdate
    ) -> ChatSession:
        status, agent_session_id, title = validate_session_update(
            update.status, update.agent_session_id, update.title
        )
        async with self._as_machine(token) as (tx, _):
            session = ensure_open(await self._machine_session(tx, token.machine_id, session_id))
            await tx.run(
                "UPDATE chat_sessions SET status = coalesce(?, status),"
                " agent_session_id = coalesce(?, agent_session_id), title = coalesce(title, ?)"
                " WHERE chat_session_id = ?",
                None if status is None else status.value,
                agent_session_id,
                title,
                session_id,
            )
            touch_session(tx, session.worker_id, session_id, token.machine_id)
            return await load_session(tx, session_id)

    async def report_undo(
        self, token: MachineToken, session_id: ChatSessionId, applied: int, error: str | None
    ) -> ChatSession:
        async with self._as_machine(token) as (tx, _):
            session = await self._machine_session(tx, token.machine_id, session_id)
            return await save_undo(tx, undo.finish_undo(session, applied, error), token.machine_id)

    async def record_permission(
        self, token: MachineToken, message_id: MessageId, ask: replies.PermissionAsk
    ) -> PermissionRequest:
        permission_id = PermissionId(self._ids.new_id("permission"))
        async with self._as_machine(token) as (tx, _):
            message, session = await self._machine_message(tx, token.machine_id, message_id)
            request = replies.ask_permission(permission_id, message, ask, rows.from_ms(self._now()))
            await tx.run(
                "INSERT INTO permission_requests (permission_id, chat_session_id, message_id,"
                " agent_request_id, tool, description, status, created_at, file, diff, diff_size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                request.permission_id,
                request.chat_session_id,
                request.message_id,
                request.agent_request_id,
                request.tool,
                request.description,
                request.status.value,
                rows.to_ms(request.created_at),
                request.file,
                request.diff,
                request.diff_size,
            )
            touch_session(
                tx, session.worker_id, session.chat_session_id, token.machine_id, requests=True
            )
            return await load_permission(tx, permission_id)

    async def resolve_permission(
        self, token: MachineToken, permission_id: PermissionId
    ) -> PermissionRequest:
        async with self._as_machine(token) as (tx, _):
            row = await tx.found(
                NO_PERMISSION, _MACHINE_PERMISSION, permission_id, token.machine_id
            )
            await save_permission(tx, replies.resolve_permission(rows.permission(row)))
            touch_session(
                tx, row["worker_id"], row["chat_session_id"], token.machine_id, requests=True
            )
            return await load_permission(tx, permission_id)

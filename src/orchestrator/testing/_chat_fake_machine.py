"""Chat for the in-memory fake as a machine sees it: work to do, claims, streaming."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import attrs

from orchestrator.domain import chat, replies, undo
from orchestrator.domain.ids import (
    ChatSessionId,
    ChunkId,
    MachineToken,
    MessageId,
    PermissionId,
)
from orchestrator.domain.model import WorkerStatus
from orchestrator.testing._chat_fake import NO_PERMISSION, ChatFakeBase
from orchestrator.testing._state_fake import FinishedEnding

TERMINATED = chat.ChatSessionStatus.TERMINATED
PENDING = WorkerStatus.PENDING_AUTHORIZATION


class ChatMachineFake(ChatFakeBase):
    """The :class:`~orchestrator.domain.ports.ChatMachineBackend` half."""

    async def _work(self, token: MachineToken) -> list[chat.SessionWork]:
        self._auth(token)
        work = []
        for session in sorted(self.chat_sessions.values(), key=lambda s: s.created_at):
            worker = self.workers[session.worker_id]
            if worker.machine_id != token.machine_id or worker.status is PENDING:
                continue
            streaming = self._streaming(session.chat_session_id)
            if session.status is TERMINATED and streaming is None:
                continue  # ended for good: nothing left for the machine to stop
            messages = self._messages_of(session.chat_session_id)
            pending = (
                ()
                if session.status is TERMINATED
                else tuple(m for m in messages if m.status is chat.MessageStatus.PENDING)
            )
            answered = sorted(
                (
                    p
                    for p in self.permissions.values()
                    if p.chat_session_id == session.chat_session_id
                    and p.status is chat.PermissionStatus.ANSWERED
                ),
                key=lambda p: p.created_at,
            )
            questions = self._answered_questions(session.chat_session_id)
            work.append(chat.SessionWork(session, pending, streaming, tuple(answered), questions))
        return work

    def watch_work(self, token: MachineToken) -> AsyncGenerator[list[chat.SessionWork], None]:
        return self._watch(lambda: self._work(token))

    async def list_session_messages(
        self, token: MachineToken, session_id: ChatSessionId
    ) -> list[chat.ChatMessage]:
        return self._messages_of(self._machine_session(token, session_id).chat_session_id)

    async def claim_message(self, token: MachineToken, message_id: MessageId) -> chat.ChatMessage:
        message, session = self._machine_message(token, message_id)
        messages = self._messages_of(session.chat_session_id)
        pending = [m.message_id for m in messages if m.status is chat.MessageStatus.PENDING]
        streaming = self._streaming(session.chat_session_id)
        reply_id, now = MessageId(self.ids.new_id("message")), self._now()
        oldest = pending[0] if pending else None
        message, reply = replies.claim_message(message, session, streaming, oldest, reply_id, now)
        self._save(message)
        self._save(attrs.evolve(session, last_activity=now))
        self._save(reply)
        await self._commit()
        return reply

    async def append_chunk(
        self, token: MachineToken, message_id: MessageId, text: str
    ) -> chat.ChatChunk:
        chat.validate_chunk(text)
        message, session = self._machine_message(token, message_id)
        chat.ensure_streaming(message)
        chunk = self._insert_chunk(session, message_id, text)
        await self._commit()
        return chunk

    def _next_sequence(self, session_id: ChatSessionId) -> int:
        """The session's next sequence (chunks and parts share it)."""
        self.sequences[session_id] = self.sequences.get(session_id, 0) + 1
        return self.sequences[session_id]

    def _insert_chunk(
        self,
        session: chat.ChatSession,
        message_id: MessageId,
        text: str,
        part: tuple[str, int] | None = None,
    ) -> chat.ChatChunk:
        """Store a chunk under the session's next sequence."""
        chunk_id = ChunkId(self.ids.new_id("chunk"))
        session = self._touch(session)
        sequence = self._next_sequence(session.chat_session_id)
        chunk = chat.ChatChunk(
            chunk_id,
            message_id,
            session.chat_session_id,
            text,
            sequence,
            session.last_activity,
            *(part or (None, None)),
        )
        self.chunks[chunk_id] = chunk
        return chunk

    async def _finish(
        self,
        message: chat.ChatMessage,
        session: chat.ChatSession,
        status: chat.MessageStatus,
        content: str,
        error: str | None = None,
    ) -> chat.ChatMessage:
        asked = None if message.reply_to is None else self.chat_messages[message.reply_to]
        ended = replies.end_reply(
            message,
            asked,
            self.permissions.values(),
            self.questions.values(),
            status,
            content,
            error,
        )
        message = self._save(ended.reply)
        for record in (ended.asked, *ended.permissions):
            if record is not None:
                self._save(record)
        for question in ended.questions:
            self._save(question)
        if ended.preview is not None:
            self.finished_replies[message.message_id] = FinishedEnding(
                message.message_id, status, ended.preview, self._now()
            )
        self._touch(session)
        await self._commit()
        return message

    async def complete_message(
        self, token: MachineToken, message_id: MessageId, content: str
    ) -> chat.ChatMessage:
        chat.validate_reply(content)
        message, session = self._machine_message(token, message_id)
        return await self._finish(message, session, chat.MessageStatus.COMPLETED, content)

    async def end_reply(
        self, token: MachineToken, message_id: MessageId, status: chat.MessageStatus, reason: str
    ) -> chat.ChatMessage:
        status, reason = chat.validate_ending(status, reason)
        message, session = self._machine_message(token, message_id)
        return await self._finish(message, session, status, self._streamed(message), reason)

    def _streamed(self, message: chat.ChatMessage) -> str:
        """The text streamed into a reply so far."""
        chunks = self._chunks_of(message.chat_session_id)
        return "".join(c.chunk for c in chunks if c.message_id == message.message_id)

    async def _end_replies_of(self, machine_id: str) -> None:
        """End the machine's streaming replies as interrupted, keeping the text they hold."""
        for message in list(self.chat_messages.values()):
            session = self.chat_sessions.get(message.chat_session_id)
            worker = self.workers.get(session.worker_id) if session else None
            if (
                session is not None
                and worker is not None
                and worker.machine_id == machine_id
                and message.status is chat.MessageStatus.STREAMING
            ):
                await self._finish(
                    message,
                    session,
                    chat.MessageStatus.INTERRUPTED,
                    self._streamed(message),
                    chat.GONE_REASON,
                )

    async def update_session(
        self, token: MachineToken, session_id: ChatSessionId, update: chat.SessionUpdate
    ) -> chat.ChatSession:
        status, agent_session_id, title = chat.validate_session_update(
            update.status, update.agent_session_id, update.title
        )
        session = chat.ensure_open(self._machine_session(token, session_id))
        session = self._save(
            attrs.evolve(
                session,
                status=status or session.status,
                agent_session_id=agent_session_id or session.agent_session_id,
                title=session.title or title,
            )
        )
        await self._commit()
        return session

    async def report_undo(
        self, token: MachineToken, session_id: ChatSessionId, applied: int, error: str | None
    ) -> chat.ChatSession:
        session = self._machine_session(token, session_id)
        session = self._save(undo.finish_undo(session, applied, error))
        await self._commit()
        return session

    async def record_permission(
        self, token: MachineToken, message_id: MessageId, ask: replies.PermissionAsk
    ) -> chat.PermissionRequest:
        message, _ = self._machine_message(token, message_id)
        permission_id = PermissionId(self.ids.new_id("permission"))
        request = replies.ask_permission(permission_id, message, ask, self._now())
        self._save(request)
        await self._commit()
        return request

    async def resolve_permission(
        self, token: MachineToken, permission_id: PermissionId
    ) -> chat.PermissionRequest:
        request = self._machine_record(token, self.permissions.get(permission_id), NO_PERMISSION)
        request = self._save(replies.resolve_permission(request))
        await self._commit()
        return request

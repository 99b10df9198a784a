"""Chat for :class:`~orchestrator.testing.fakes.InMemoryBackend`: both sides, in dicts.

The rules are the domain's (``orchestrator.domain.chat``) and the orderings
those of the SQLite backend; the contract suite holds both to the same result.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Protocol, TypeVar

import attrs

from orchestrator.adapters.cursor import follow_cursor
from orchestrator.adapters.port_methods import PagesMessages
from orchestrator.domain import chat, replies, undo
from orchestrator.domain.diffs import TURN_DIFF_PART
from orchestrator.domain.errors import NotFound
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineId,
    MachineToken,
    MessageId,
    PermissionId,
    UserId,
    WorkerId,
)
from orchestrator.domain.model import WorkerStatus
from orchestrator.domain.paging import (
    LIST_PAGE,
    SESSIONS,
    Page,
    decode_cursor,
    make_page,
    message_size,
    page_from_list,
    page_limit,
    session_size,
)
from orchestrator.domain.parts import PartId
from orchestrator.domain.questions import QuestionRequest
from orchestrator.testing._state_fake import FakeState

T = TypeVar("T")


class _InSession(Protocol):
    @property
    def chat_session_id(self) -> ChatSessionId: ...


#: A record of a session (a message, a permission or question request).
InSession = TypeVar("InSession", bound=_InSession)
#: A request the agent makes of the user.
Request = TypeVar("Request", chat.PermissionRequest, QuestionRequest)

TERMINATED = chat.ChatSessionStatus.TERMINATED
PENDING = WorkerStatus.PENDING_AUTHORIZATION
NO_MESSAGE = "No such message."
NO_PERMISSION = "No such permission request."
_OPEN_PERMISSION = (chat.PermissionStatus.PENDING, chat.PermissionStatus.ANSWERED)


def _session_id(session: chat.ChatSession) -> str:
    return session.chat_session_id


def _message_id(message: chat.ChatMessage) -> str:
    return message.message_id


class ChatFakeBase(FakeState):
    """What both sides of chat share, on top of the fake's machines and workers."""

    # --- helpers ----------------------------------------------------------------------

    def _drop_chat_of(self, worker_ids: Iterable[WorkerId]) -> None:
        """Cascade: forget the sessions of deleted workers and everything in them."""
        gone = {s for s, session in self.chat_sessions.items() if session.worker_id in worker_ids}
        for session_id in gone:
            del self.chat_sessions[session_id]
        for chunk in [c for c in self.chunks.values() if c.chat_session_id in gone]:
            del self.chunks[chunk.chunk_id]
        for message in [m for m in self.chat_messages.values() if m.chat_session_id in gone]:
            del self.chat_messages[message.message_id]
        for request in [p for p in self.permissions.values() if p.chat_session_id in gone]:
            del self.permissions[request.permission_id]
        for key in [k for k, part in self.parts.items() if part.chat_session_id in gone]:
            del self.parts[key]
        self._drop_questions(gone)

    def _user_session(self, user: UserId, session_id: ChatSessionId) -> chat.ChatSession:
        session = self.chat_sessions.get(session_id)
        if session is None or session.user_id != user:
            raise NotFound("No such chat session.")
        return session

    def _machine_of(self, session: chat.ChatSession) -> MachineId:
        return self.workers[session.worker_id].machine_id

    def _machine_session(self, token: MachineToken, session_id: ChatSessionId) -> chat.ChatSession:
        self._auth(token)
        session = self.chat_sessions.get(session_id)
        if session is None or self._machine_of(session) != token.machine_id:
            raise NotFound("No such chat session.")
        return session

    def _user_record(self, user: UserId, record: InSession | None, missing: str) -> InSession:
        """``record`` if it is in one of the user's sessions, else NotFound(``missing``)."""
        session = self.chat_sessions[record.chat_session_id] if record else None
        if record is None or session is None or session.user_id != user:
            raise NotFound(missing)
        return record

    def _machine_record(
        self, token: MachineToken, record: InSession | None, missing: str
    ) -> InSession:
        """``record`` if it is in a session of the token's machine, else NotFound(``missing``)."""
        self._auth(token)
        session = self.chat_sessions[record.chat_session_id] if record else None
        if record is None or session is None or self._machine_of(session) != token.machine_id:
            raise NotFound(missing)
        return record

    def _machine_message(
        self, token: MachineToken, message_id: MessageId
    ) -> tuple[chat.ChatMessage, chat.ChatSession]:
        message = self._machine_record(token, self.chat_messages.get(message_id), NO_MESSAGE)
        return message, self.chat_sessions[message.chat_session_id]

    def _requests_of(
        self,
        user: UserId,
        session_id: ChatSessionId,
        requests: Iterable[Request],
        include_answered: bool,
    ) -> list[Request]:
        """The user's session's requests, oldest first: the pending ones, or all if asked."""
        self._user_session(user, session_id)
        found = [
            r
            for r in requests
            if r.chat_session_id == session_id and (include_answered or r.status == "pending")
        ]
        return sorted(found, key=lambda r: r.created_at)

    def _messages_of(self, session_id: ChatSessionId) -> list[chat.ChatMessage]:
        mine = [m for m in self.chat_messages.values() if m.chat_session_id == session_id]
        return sorted(mine, key=lambda m: m.timestamp)  # stable: ties keep insertion order

    def _chunks_of(self, session_id: ChatSessionId, after: int = 0) -> list[chat.ChatChunk]:
        # Appended in sequence order, so insertion order is sequence order.
        return [
            c
            for c in self.chunks.values()
            if c.chat_session_id == session_id and c.sequence > after
        ]

    def _streaming(self, session_id: ChatSessionId) -> chat.ChatMessage | None:
        found = [
            m for m in self._messages_of(session_id) if m.status is chat.MessageStatus.STREAMING
        ]
        return found[0] if found else None

    def _save(self, record: T) -> T:
        if isinstance(record, chat.ChatSession):
            self.chat_sessions[record.chat_session_id] = record
        elif isinstance(record, chat.ChatMessage):
            self.chat_messages[record.message_id] = record
        elif isinstance(record, chat.PermissionRequest):
            self.permissions[record.permission_id] = record
        elif isinstance(record, QuestionRequest):
            self.questions[record.question_id] = record
        return record

    def _touch(
        self, session: chat.ChatSession, status: chat.ChatSessionStatus | None = None
    ) -> chat.ChatSession:
        """Record activity on ``session`` now (and optionally a new status)."""
        changed = attrs.evolve(session, last_activity=self._now(), status=status or session.status)
        return self._save(changed)


class ChatUserFake(PagesMessages, ChatFakeBase):
    """The :class:`~orchestrator.domain.ports.ChatUserBackend` half."""

    async def start_session(
        self, user: UserId, worker_id: WorkerId, model: str, agent: str | None = None
    ) -> chat.ChatSession:
        worker = self._owned_worker(user, worker_id)
        chat.check_model(worker, model)
        chat.check_agent(worker, agent)
        now = self._now()
        session_id = ChatSessionId(self.ids.new_id("chat_session"))
        session = chat.ChatSession(
            session_id, worker_id, user, model, chat.ChatSessionStatus.ACTIVE, now, now, agent=agent
        )
        self._save(session)
        await self._commit()
        return session

    async def end_session(self, user: UserId, session_id: ChatSessionId) -> chat.ChatSession:
        session = self._user_session(user, session_id)
        if session.status is TERMINATED:
            return session
        session = self._touch(session, status=TERMINATED)
        reply = self._streaming(session_id)
        if reply is not None:
            self._save(attrs.evolve(reply, abort_requested=True))
        await self._commit()
        return session

    async def restore_session(self, user: UserId, session_id: ChatSessionId) -> chat.ChatSession:
        session = self._user_session(user, session_id)
        if session.status is not TERMINATED:
            return session
        session = self._touch(session, status=chat.ChatSessionStatus.IDLE)
        await self._commit()
        return session

    async def rename_session(
        self, user: UserId, session_id: ChatSessionId, title: str
    ) -> chat.ChatSession:
        title = chat.validate_title(title)
        session = self._save(attrs.evolve(self._user_session(user, session_id), title=title))
        await self._commit()
        return session

    async def undo_turn(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId
    ) -> chat.ChatSession:
        session = self._user_session(user, session_id)
        part = self.parts.get((message_id, PartId(TURN_DIFF_PART)))
        turn = undo.agent_turn_of(None if part is None else part.body)
        reply = self.chat_messages.get(message_id)
        streaming = self._streaming(session_id)
        changed = undo.request_undo(session, reply, turn, streaming, self._now())
        session = self._save(changed)
        await self._commit()
        return session

    async def redo_turns(self, user: UserId, session_id: ChatSessionId) -> chat.ChatSession:
        session = self._user_session(user, session_id)
        times = [
            m.timestamp for m in self.chat_messages.values() if m.chat_session_id == session_id
        ]
        changed = undo.request_redo(session, self._streaming(session_id), max(times, default=None))
        session = self._save(changed)
        await self._commit()
        return session

    async def get_session(self, user: UserId, session_id: ChatSessionId) -> chat.ChatSession:
        return self._user_session(user, session_id)

    async def list_sessions(self, user: UserId, worker_id: WorkerId) -> list[chat.ChatSession]:
        self._owned_worker(user, worker_id)
        mine = [s for s in reversed(self.chat_sessions.values()) if s.worker_id == worker_id]
        # Newest first (ties: newest created), then open before terminated; sorts are stable.
        mine.sort(key=lambda s: (s.last_activity, s.created_at), reverse=True)
        return sorted(mine, key=lambda s: s.status is TERMINATED)

    async def list_sessions_page(
        self, user: UserId, worker_id: WorkerId, cursor: str | None = None, limit: int | None = None
    ) -> Page[chat.ChatSession]:
        count = page_limit(limit, LIST_PAGE)
        after = decode_cursor(cursor, SESSIONS, worker_id)
        found = await self.list_sessions(user, worker_id)
        items, more = page_from_list(found, after, count, session_size, _session_id)
        return make_page(items, more, SESSIONS, worker_id, _session_id)

    async def send_message(
        self, user: UserId, session_id: ChatSessionId, content: str, agent: str | None = None
    ) -> chat.ChatMessage:
        chat.validate_message(content)
        session = chat.ensure_open(self._user_session(user, session_id))
        chat.check_agent(self.workers[session.worker_id], agent)
        session = self._touch(session, status=chat.ChatSessionStatus.ACTIVE)
        message = chat.ChatMessage(
            MessageId(self.ids.new_id("message")),
            session_id,
            chat.MessageRole.USER,
            content,
            chat.MessageStatus.PENDING,
            session.last_activity,
            agent=agent,
        )
        self._save(message)
        await self._commit()
        return message

    def _queued(self, user: UserId, message_id: MessageId) -> chat.ChatMessage:
        message = self.chat_messages.get(message_id)
        if message is None or self.chat_sessions[message.chat_session_id].user_id != user:
            raise NotFound("No such message.")
        chat.ensure_open(self.chat_sessions[message.chat_session_id])
        return chat.ensure_queued(message)

    async def edit_message(
        self, user: UserId, message_id: MessageId, content: str
    ) -> chat.ChatMessage:
        chat.validate_message(content)
        message = self._save(attrs.evolve(self._queued(user, message_id), content=content))
        await self._commit()
        return message

    async def cancel_message(self, user: UserId, message_id: MessageId) -> None:
        self._queued(user, message_id)
        del self.chat_messages[message_id]
        await self._commit()

    async def list_messages(
        self, user: UserId, session_id: ChatSessionId
    ) -> list[chat.ChatMessage]:
        self._user_session(user, session_id)
        return self._messages_of(session_id)

    async def _messages_page(
        self, user: UserId, session_id: ChatSessionId, after: str | None, count: int
    ) -> tuple[list[chat.ChatMessage], bool]:
        self._user_session(user, session_id)
        newest_first = self._messages_of(session_id)[::-1]
        return page_from_list(newest_first, after, count, message_size, _message_id)

    async def request_abort(
        self, user: UserId, session_id: ChatSessionId
    ) -> chat.ChatMessage | None:
        self._user_session(user, session_id)
        reply = self._streaming(session_id)
        if reply is None or reply.abort_requested:
            return reply
        reply = self._save(attrs.evolve(reply, abort_requested=True))
        await self._commit()
        return reply

    async def list_permissions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[chat.PermissionRequest]:
        return self._requests_of(user, session_id, self.permissions.values(), include_answered)

    async def answer_permission(
        self, user: UserId, permission_id: PermissionId, answer: chat.PermissionAnswer
    ) -> chat.PermissionRequest:
        answer = chat.PermissionAnswer(answer)
        request = self._user_record(user, self.permissions.get(permission_id), NO_PERMISSION)
        request = self._save(replies.answer_permission(request, answer))
        await self._commit()
        return request

    def watch_sessions(
        self, user: UserId, worker_id: WorkerId
    ) -> AsyncGenerator[list[chat.ChatSession], None]:
        return self._watch(lambda: self.list_sessions(user, worker_id))

    def watch_messages(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncGenerator[list[chat.ChatMessage], None]:
        return self._watch(lambda: self._newest_messages(user, session_id))

    async def _newest_messages(
        self, user: UserId, session_id: ChatSessionId
    ) -> list[chat.ChatMessage]:
        return list((await self.list_messages_page(user, session_id)).items[::-1])

    async def _chunks_after(
        self, user: UserId, session_id: ChatSessionId, after: int
    ) -> list[chat.ChatChunk]:
        self._user_session(user, session_id)
        return self._chunks_of(session_id, after=after)

    def watch_chunks(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[chat.ChatChunk], None]:
        return follow_cursor(
            self._wakeups(), lambda last: self._chunks_after(user, session_id, last), after_sequence
        )

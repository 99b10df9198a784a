"""Chat on the embedded backend: the owner's side, and the helpers both sides share.

Change-feed topics: ``("chat_sessions", worker_id)`` for a worker's session
list, ``("chat", session_id)`` for a session's messages and permission
requests, ``("chunks", session_id)`` for its chunks and ``("work", machine_id)``
for the machine's work list. Deleting a worker or a machine wakes every
subscription instead (rare, and the cascade touches too much to list).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._machine_side import NO_WORKER, MachineSide
from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    PermissionAnswer,
    PermissionRequest,
    PermissionStatus,
    check_model,
    ensure_open,
    validate_message,
    validate_title,
)
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import ChatSessionId, PermissionId, UserId, WorkerId

NO_SESSION = "No such chat session."
NO_MESSAGE = "No such message."
NO_PERMISSION = "No such permission request."
#: Topic of every session's permission requests at once.
WAITING = ("waiting",)
#: How many chunks one read of ``watch_chunks`` takes at most.
CHUNK_PAGE = 500

_OPEN = frozenset({ChatSessionStatus.ACTIVE, ChatSessionStatus.IDLE})
_ENDED = frozenset({ChatSessionStatus.TERMINATED})

_OWNED_WORKER = """
    SELECT w.* FROM workers AS w JOIN machines AS m USING (machine_id)
    WHERE w.worker_id = ? AND m.user_id = ?
"""
_OWNED_SESSION = """
    SELECT s.*, w.machine_id FROM chat_sessions AS s JOIN workers AS w USING (worker_id)
    WHERE s.chat_session_id = ? AND s.user_id = ?
"""
_OWNED_PERMISSION = """
    SELECT p.*, s.worker_id, w.machine_id
    FROM permission_requests AS p
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE p.permission_id = ? AND s.user_id = ?
"""
_SESSIONS_OF_WORKER = """
    SELECT * FROM chat_sessions WHERE worker_id = ?
    ORDER BY status = 'terminated', last_activity DESC, created_at DESC, rowid DESC
"""


def touch_session(tx: Tx, worker_id: str, session_id: str, machine_id: str) -> None:
    """Wake the subscriptions that show this session, its messages or its machine's work."""
    tx.touch(("chat_sessions", worker_id), ("chat", session_id), ("work", machine_id))
    tx.touch(WAITING)  # permission requests of any session (the notifier, the inbox)


async def load_session(tx: Tx, session_id: str) -> ChatSession:
    row = await tx.one("SELECT * FROM chat_sessions WHERE chat_session_id = ?", session_id)
    assert row is not None
    return rows.chat_session(row)


async def load_message(tx: Tx, message_id: str) -> ChatMessage:
    row = await tx.one("SELECT * FROM chat_messages WHERE message_id = ?", message_id)
    assert row is not None
    return rows.chat_message(row)


async def load_permission(tx: Tx, permission_id: str) -> PermissionRequest:
    row = await tx.one("SELECT * FROM permission_requests WHERE permission_id = ?", permission_id)
    assert row is not None
    return rows.permission(row)


async def messages_of(tx: Tx, session_id: str) -> list[ChatMessage]:
    found = await tx.all(
        "SELECT * FROM chat_messages WHERE chat_session_id = ? ORDER BY timestamp, rowid",
        session_id,
    )
    return [rows.chat_message(row) for row in found]


async def streaming_reply(tx: Tx, session_id: str) -> ChatMessage | None:
    row = await tx.one(
        "SELECT * FROM chat_messages WHERE chat_session_id = ? AND status = 'streaming'",
        session_id,
    )
    return None if row is None else rows.chat_message(row)


class ChatUserSide(MachineSide):
    """The :class:`~orchestrator.domain.ports.ChatUserBackend` half."""

    async def _user_session(
        self, tx: Tx, user: UserId, session_id: ChatSessionId
    ) -> tuple[ChatSession, str]:
        row = await tx.one(_OWNED_SESSION, session_id, user)
        if row is None:
            raise NotFound(NO_SESSION)
        return rows.chat_session(row), row["machine_id"]

    async def _set_session_status(
        self,
        user: UserId,
        session_id: ChatSessionId,
        old: frozenset[ChatSessionStatus],
        new: ChatSessionStatus,
    ) -> ChatSession:
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            if session.status in old:
                await tx.run(
                    "UPDATE chat_sessions SET status = ?, last_activity = ?"
                    " WHERE chat_session_id = ?",
                    new.value,
                    self._now(),
                    session_id,
                )
                if new is ChatSessionStatus.TERMINATED:
                    await tx.run(
                        "UPDATE chat_messages SET abort_requested = 1"
                        " WHERE chat_session_id = ? AND status = 'streaming'",
                        session_id,
                    )
                touch_session(tx, session.worker_id, session_id, machine_id)
            return await load_session(tx, session_id)

    async def start_session(self, user: UserId, worker_id: WorkerId, model: str) -> ChatSession:
        session_id = self._ids.new_id("chat_session")
        async with self._store.transaction(write=True) as tx:
            row = await tx.one(_OWNED_WORKER, worker_id, user)
            if row is None:
                raise NotFound(NO_WORKER)
            check_model(rows.worker(row), model)
            now = self._now()
            await tx.run(
                "INSERT INTO chat_sessions (chat_session_id, worker_id, user_id, model, status,"
                " created_at, last_activity) VALUES (?, ?, ?, ?, 'active', ?, ?)",
                session_id,
                worker_id,
                user,
                model,
                now,
                now,
            )
            touch_session(tx, worker_id, session_id, row["machine_id"])
            return await load_session(tx, session_id)

    async def end_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        return await self._set_session_status(user, session_id, _OPEN, ChatSessionStatus.TERMINATED)

    async def restore_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        return await self._set_session_status(user, session_id, _ENDED, ChatSessionStatus.IDLE)

    async def rename_session(
        self, user: UserId, session_id: ChatSessionId, title: str
    ) -> ChatSession:
        title = validate_title(title)
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            await tx.run(
                "UPDATE chat_sessions SET title = ? WHERE chat_session_id = ?", title, session_id
            )
            touch_session(tx, session.worker_id, session_id, machine_id)
            return await load_session(tx, session_id)

    async def get_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        async with self._store.transaction() as tx:
            session, _ = await self._user_session(tx, user, session_id)
            return session

    async def list_sessions(self, user: UserId, worker_id: WorkerId) -> list[ChatSession]:
        async with self._store.transaction() as tx:
            if await tx.one(_OWNED_WORKER, worker_id, user) is None:
                raise NotFound(NO_WORKER)
            return [rows.chat_session(row) for row in await tx.all(_SESSIONS_OF_WORKER, worker_id)]

    async def send_message(
        self, user: UserId, session_id: ChatSessionId, content: str
    ) -> ChatMessage:
        validate_message(content)
        message_id = self._ids.new_id("message")
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            ensure_open(session)
            now = self._now()
            # A message wakes an idle session: the machine resumes its agent.
            await tx.run(
                "UPDATE chat_sessions SET status = 'active', last_activity = ?"
                " WHERE chat_session_id = ?",
                now,
                session_id,
            )
            await tx.run(
                "INSERT INTO chat_messages (message_id, chat_session_id, role, content, status,"
                " timestamp) VALUES (?, ?, 'user', ?, 'pending', ?)",
                message_id,
                session_id,
                content,
                now,
            )
            touch_session(tx, session.worker_id, session_id, machine_id)
            return await load_message(tx, message_id)

    async def list_messages(self, user: UserId, session_id: ChatSessionId) -> list[ChatMessage]:
        async with self._store.transaction() as tx:
            await self._user_session(tx, user, session_id)
            return await messages_of(tx, session_id)

    async def request_abort(self, user: UserId, session_id: ChatSessionId) -> ChatMessage | None:
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            reply = await streaming_reply(tx, session_id)
            if reply is None or reply.abort_requested:
                return reply
            await tx.run(
                "UPDATE chat_messages SET abort_requested = 1 WHERE message_id = ?",
                reply.message_id,
            )
            touch_session(tx, session.worker_id, session_id, machine_id)
            return await load_message(tx, reply.message_id)

    async def list_permissions(
        self, user: UserId, session_id: ChatSessionId, include_answered: bool = False
    ) -> list[PermissionRequest]:
        async with self._store.transaction() as tx:
            await self._user_session(tx, user, session_id)
            found = await tx.all(
                "SELECT * FROM permission_requests WHERE chat_session_id = ?"
                " AND (? OR status = 'pending') ORDER BY created_at, rowid",
                session_id,
                include_answered,
            )
            return [rows.permission(row) for row in found]

    async def answer_permission(
        self, user: UserId, permission_id: PermissionId, answer: PermissionAnswer
    ) -> PermissionRequest:
        answer = PermissionAnswer(answer)
        async with self._store.transaction(write=True) as tx:
            row = await tx.one(_OWNED_PERMISSION, permission_id, user)
            if row is None:
                raise NotFound(NO_PERMISSION)
            if row["status"] != PermissionStatus.PENDING:
                raise Conflict("This permission request is no longer waiting for an answer.")
            await tx.run(
                "UPDATE permission_requests SET status = 'answered', answer = ?"
                " WHERE permission_id = ?",
                answer.value,
                permission_id,
            )
            touch_session(tx, row["worker_id"], row["chat_session_id"], row["machine_id"])
            return await load_permission(tx, permission_id)

    def watch_sessions(
        self, user: UserId, worker_id: WorkerId
    ) -> AsyncGenerator[list[ChatSession], None]:
        return self._store.feed.watch(
            [("chat_sessions", worker_id)], lambda: self.list_sessions(user, worker_id)
        )

    def watch_messages(
        self, user: UserId, session_id: ChatSessionId
    ) -> AsyncGenerator[list[ChatMessage], None]:
        return self._store.feed.watch(
            [("chat", session_id)], lambda: self.list_messages(user, session_id)
        )

    async def _chunks_after(
        self, user: UserId, session_id: ChatSessionId, after: int
    ) -> list[ChatChunk]:
        async with self._store.transaction() as tx:
            await self._user_session(tx, user, session_id)
            found = await tx.all(
                "SELECT * FROM chat_chunks WHERE chat_session_id = ? AND sequence > ?"
                " ORDER BY sequence LIMIT ?",
                session_id,
                after,
                CHUNK_PAGE,
            )
            return [rows.chat_chunk(row) for row in found]

    async def watch_chunks(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[ChatChunk], None]:
        # A cursor, not a snapshot: remember the last sequence yielded and read
        # only what follows it, a bounded page at a time, until caught up.
        last, first = after_sequence, True
        async with aclosing(self._store.feed.wakeups([("chunks", session_id)])) as wakeups:
            async for _ in wakeups:
                while True:
                    page = await self._chunks_after(user, session_id, last)
                    if page:
                        last = page[-1].sequence
                    if page or first:
                        first = False
                        yield page
                    if len(page) < CHUNK_PAGE:
                        break

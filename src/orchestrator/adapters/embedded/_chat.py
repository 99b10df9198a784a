"""Chat on the embedded backend: the owner's side, and the helpers both sides share.

Change-feed topics: ``("chat_sessions", worker_id)`` for a worker's session
list, ``("chat", session_id)`` for a session's messages and permission
requests, ``("chunks", session_id)`` for its chunks and ``("work", machine_id)``
for the machine's work list. Deleting a worker or a machine wakes every
subscription instead (rare, and the cascade touches too much to list).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from functools import partial
from typing import Literal, TypeVar

import aiosqlite

from orchestrator.adapters.cursor import follow_cursor
from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._machine_side import NO_WORKER, OWNED_WORKER, MachineSide
from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.parts_json import body_from_row
from orchestrator.adapters.port_methods import PagesMessages
from orchestrator.domain import replies, undo
from orchestrator.domain.chat import (
    SESSION_ENDED,
    ChatChunk,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    PermissionAnswer,
    PermissionRequest,
    check_agent,
    check_model,
    ensure_open,
    ensure_queued,
    validate_message,
    validate_title,
)
from orchestrator.domain.diffs import TURN_DIFF_PART
from orchestrator.domain.errors import Conflict, InvalidInput
from orchestrator.domain.ids import ChatSessionId, MessageId, PermissionId, UserId, WorkerId
from orchestrator.domain.paging import (
    LIST_PAGE,
    OTHER_LIST,
    RECORD_OVERHEAD,
    SESSIONS,
    Page,
    cut_page,
    decode_cursor,
    make_page,
    page_limit,
    session_size,
)
from orchestrator.domain.parts import StreamEvent

NO_SESSION = "No such chat session."
NO_MESSAGE = "No such message."
NO_PERMISSION = "No such permission request."
#: Topic of every session's turns at once: a message made, claimed, ended or withdrawn
#: (the notifier's open turns, the inbox's finished replies).
TURNS = ("turns",)
#: Topic of every session's permission requests and questions at once (the notifier).
REQUESTS = ("requests",)
#: How many chunks one read of ``watch_chunks`` takes at most.
CHUNK_PAGE = 500

#: Above every timestamp and rowid: the start of a session's newest page.
_END = 2**63 - 1

_OPEN = frozenset({ChatSessionStatus.ACTIVE, ChatSessionStatus.IDLE})
_ENDED = frozenset({ChatSessionStatus.TERMINATED})

_OWNED_SESSION = """
    SELECT s.*, w.machine_id FROM chat_sessions AS s JOIN workers AS w USING (worker_id)
    WHERE s.chat_session_id = ? AND s.user_id = ?
"""
_OWNED_MESSAGE = """
    SELECT m.*, s.worker_id, s.status AS session_status, w.machine_id
    FROM chat_messages AS m
    JOIN chat_sessions AS s USING (chat_session_id) JOIN workers AS w USING (worker_id)
    WHERE m.message_id = ? AND s.user_id = ?
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


# A page of a worker's sessions starts after a position in the list's order: ended or not,
# then newest activity, newest created, newest row first.
_SESSION_POSITION = """
    SELECT status = 'terminated', last_activity, created_at, rowid FROM chat_sessions
    WHERE chat_session_id = ? AND worker_id = ?
"""
_SESSIONS_PAGE = """
    SELECT * FROM chat_sessions WHERE worker_id = ? AND (
        (status = 'terminated') > ?
        OR ((status = 'terminated') = ? AND (last_activity, created_at, rowid) < (?, ?, ?))
    )
    ORDER BY status = 'terminated', last_activity DESC, created_at DESC, rowid DESC LIMIT ?
"""
#: Before every session of the list: the start of its first page.
_FIRST_SESSION = (-1, 0, 0, 0)

T = TypeVar("T")
#: What a session's stream carries: chunks, or chunks and parts (``watch_events``).
E = TypeVar("E", bound=StreamEvent)


async def chunks_after(
    tx: Tx, session_id: ChatSessionId, after: int, limit: int
) -> list[ChatChunk]:
    """The session's first ``limit`` chunks after sequence ``after``, in order."""
    found = await tx.all(
        "SELECT * FROM chat_chunks WHERE chat_session_id = ? AND sequence > ?"
        " ORDER BY sequence LIMIT ?",
        session_id,
        after,
        limit,
    )
    return [rows.chat_chunk(row, after) for row in found]


def touch_session(
    tx: Tx,
    worker_id: str,
    session_id: str,
    machine_id: str,
    *,
    turns: bool = False,
    requests: bool = False,
) -> None:
    """Wake the subscriptions that show this session, its messages or its machine's work;
    with ``turns`` also those of every session's turns (a message made, claimed, ended or
    withdrawn), with ``requests`` those of its permission requests and questions.

    Server-wide watchers (the notifier, the inbox) wake only for what they show: a title,
    a session status or an abort request does not re-run their queries.
    """
    tx.touch(("chat_sessions", worker_id), ("chat", session_id), ("work", machine_id))
    if turns:
        tx.touch(TURNS)
    if requests:
        tx.touch(REQUESTS, ("requests", session_id))


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


async def save_permission(tx: Tx, request: PermissionRequest) -> None:
    """Write a permission request's status and answer back to its row."""
    await tx.run(
        "UPDATE permission_requests SET status = ?, answer = ? WHERE permission_id = ?",
        request.status.value,
        None if request.answer is None else request.answer.value,
        request.permission_id,
    )


async def messages_of(tx: Tx, session_id: str) -> list[ChatMessage]:
    found = await tx.all(
        "SELECT * FROM chat_messages WHERE chat_session_id = ? ORDER BY timestamp, rowid",
        session_id,
    )
    return [rows.chat_message(row) for row in found]


async def messages_page(
    tx: Tx, session_id: str, after: str | None, limit: int
) -> tuple[list[ChatMessage], bool]:
    """A page of the session's messages, newest first, older than the message ``after``."""
    before = (_END, _END)
    if after is not None:
        row = await tx.one(
            "SELECT timestamp, rowid FROM chat_messages"
            " WHERE message_id = ? AND chat_session_id = ?",
            after,
            session_id,
        )
        if row is None:
            raise InvalidInput(OTHER_LIST)
        before = (row[0], row[1])
    # Sizes first, so a page of long messages never loads more than its budget.
    sizes = await tx.all(
        "SELECT message_id, ? + length(CAST(content AS BLOB))"
        " + coalesce(length(CAST(error AS BLOB)), 0) FROM chat_messages"
        " WHERE chat_session_id = ? AND (timestamp, rowid) < (?, ?)"
        " ORDER BY timestamp DESC, rowid DESC LIMIT ?",
        RECORD_OVERHEAD,
        session_id,
        *before,
        limit + 1,
    )
    chosen, more = cut_page(sizes, limit, lambda row: int(row[1]))
    ids = [str(row[0]) for row in chosen]
    found = await tx.all(
        "SELECT * FROM chat_messages WHERE message_id IN (SELECT value FROM json_each(?))",
        json.dumps(ids),
    )
    by_id = {row["message_id"]: rows.chat_message(row) for row in found}
    return [by_id[i] for i in ids], more


async def streaming_reply(tx: Tx, session_id: str) -> ChatMessage | None:
    row = await tx.one(
        "SELECT * FROM chat_messages WHERE chat_session_id = ? AND status = 'streaming'",
        session_id,
    )
    return None if row is None else rows.chat_message(row)


async def save_undo(tx: Tx, session: ChatSession, machine_id: str) -> ChatSession:
    """Store the session's undo state (domain.undo) and wake whoever shows it."""
    await tx.run(
        "UPDATE chat_sessions SET undone_from = ?, undo_agent_id = ?, undone_at = ?,"
        " undo_requests = ?, undo_applied = ?, undo_error = ? WHERE chat_session_id = ?",
        session.undone_from,
        session.undo_agent_id,
        None if session.undone_at is None else rows.to_ms(session.undone_at),
        session.undo_requests,
        session.undo_applied,
        session.undo_error,
        session.chat_session_id,
    )
    touch_session(tx, session.worker_id, session.chat_session_id, machine_id)
    return await load_session(tx, session.chat_session_id)


class ChatUserSide(PagesMessages, MachineSide):
    """The :class:`~orchestrator.domain.ports.ChatUserBackend` half."""

    async def _user_session(
        self, tx: Tx, user: UserId, session_id: ChatSessionId
    ) -> tuple[ChatSession, str]:
        row = await tx.found(NO_SESSION, _OWNED_SESSION, session_id, user)
        return rows.chat_session(row), row["machine_id"]

    async def _session_read(
        self, user: UserId, session_id: ChatSessionId, read: Callable[[Tx], Awaitable[T]]
    ) -> T:
        """What ``read`` finds in one snapshot, once the user is known to own the session."""
        async with self._store.transaction() as tx:
            await self._user_session(tx, user, session_id)
            return await read(tx)

    async def _requests(
        self,
        user: UserId,
        session_id: ChatSessionId,
        table: Literal["permission_requests", "question_requests"],
        include_answered: bool,
    ) -> list[aiosqlite.Row]:
        """The session's requests in ``table``, oldest first: the pending ones, or all if asked."""
        sql = (
            f"SELECT * FROM {table} WHERE chat_session_id = ?"  # noqa: S608 -- fixed names
            " AND (? OR status = 'pending') ORDER BY created_at, rowid"
        )
        return await self._session_read(
            user, session_id, lambda tx: tx.all(sql, session_id, include_answered)
        )

    def _follow_session(
        self,
        user: UserId,
        session_id: ChatSessionId,
        after_sequence: int,
        read: Callable[[Tx, ChatSessionId, int, int], Awaitable[list[E]]],
        page: int,
    ) -> AsyncGenerator[list[E], None]:
        """The session's stream after ``after_sequence``, ``read`` a page at a time as it grows."""
        return follow_cursor(
            self._store.feed.wakeups([("chunks", session_id)]),
            lambda last: self._session_read(
                user, session_id, lambda tx: read(tx, session_id, last, page)
            ),
            after_sequence,
            page,
        )

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

    async def start_session(
        self, user: UserId, worker_id: WorkerId, model: str, agent: str | None = None
    ) -> ChatSession:
        session_id = self._ids.new_id("chat_session")
        async with self._store.transaction(write=True) as tx:
            row = await tx.found(NO_WORKER, OWNED_WORKER, worker_id, user)
            check_model(rows.worker(row), model)
            check_agent(rows.worker(row), agent)
            now = self._now()
            await tx.run(
                "INSERT INTO chat_sessions (chat_session_id, worker_id, user_id, model, status,"
                " created_at, last_activity, agent) VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                session_id,
                worker_id,
                user,
                model,
                now,
                now,
                agent,
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

    async def undo_turn(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId
    ) -> ChatSession:
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            row = await tx.one("SELECT * FROM chat_messages WHERE message_id = ?", message_id)
            reply = None if row is None else rows.chat_message(row)
            part = await tx.one(
                "SELECT text, data FROM message_parts WHERE message_id = ? AND part_id = ?",
                message_id,
                TURN_DIFF_PART,
            )
            turn = undo.agent_turn_of(None if part is None else body_from_row(*part))
            streaming = await streaming_reply(tx, session_id)
            now = rows.from_ms(self._now())
            changed = undo.request_undo(session, reply, turn, streaming, now)
            return await save_undo(tx, changed, machine_id)

    async def redo_turns(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            streaming = await streaming_reply(tx, session_id)
            newest = await tx.one(
                "SELECT max(timestamp) AS at FROM chat_messages WHERE chat_session_id = ?",
                session_id,
            )
            last = None if newest is None or newest["at"] is None else rows.from_ms(newest["at"])
            changed = undo.request_redo(session, streaming, last)
            return await save_undo(tx, changed, machine_id)

    async def get_session(self, user: UserId, session_id: ChatSessionId) -> ChatSession:
        async with self._store.transaction() as tx:
            session, _ = await self._user_session(tx, user, session_id)
            return session

    async def list_sessions(self, user: UserId, worker_id: WorkerId) -> list[ChatSession]:
        async with self._store.transaction() as tx:
            await tx.found(NO_WORKER, OWNED_WORKER, worker_id, user)
            return [rows.chat_session(row) for row in await tx.all(_SESSIONS_OF_WORKER, worker_id)]

    async def list_sessions_page(
        self, user: UserId, worker_id: WorkerId, cursor: str | None = None, limit: int | None = None
    ) -> Page[ChatSession]:
        count = page_limit(limit, LIST_PAGE)
        after = decode_cursor(cursor, SESSIONS, worker_id)
        async with self._store.transaction() as tx:
            await tx.found(NO_WORKER, OWNED_WORKER, worker_id, user)
            start = _FIRST_SESSION
            if after is not None:
                row = await tx.one(_SESSION_POSITION, after, worker_id)
                if row is None:
                    raise InvalidInput(OTHER_LIST)
                start = (int(row[0]), int(row[1]), int(row[2]), int(row[3]))
            found = await tx.all(_SESSIONS_PAGE, worker_id, start[0], *start, count + 1)
        sessions = [rows.chat_session(row) for row in found]
        items, more = cut_page(sessions, count, session_size)
        return make_page(items, more, SESSIONS, worker_id, lambda s: s.chat_session_id)

    async def send_message(
        self, user: UserId, session_id: ChatSessionId, content: str, agent: str | None = None
    ) -> ChatMessage:
        validate_message(content)
        message_id = self._ids.new_id("message")
        async with self._store.transaction(write=True) as tx:
            session, machine_id = await self._user_session(tx, user, session_id)
            ensure_open(session)
            if agent is not None:
                worker = await tx.one(
                    "SELECT * FROM workers WHERE worker_id = ?", session.worker_id
                )
                assert worker is not None
                check_agent(rows.worker(worker), agent)
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
                " timestamp, agent) VALUES (?, ?, 'user', ?, 'pending', ?, ?)",
                message_id,
                session_id,
                content,
                now,
                agent,
            )
            touch_session(tx, session.worker_id, session_id, machine_id, turns=True)
            return await load_message(tx, message_id)

    async def _queued(self, tx: Tx, user: UserId, message_id: MessageId) -> aiosqlite.Row:
        row = await tx.found(NO_MESSAGE, _OWNED_MESSAGE, message_id, user)
        if row["session_status"] == ChatSessionStatus.TERMINATED.value:
            raise Conflict(SESSION_ENDED)
        ensure_queued(rows.chat_message(row))
        return row

    async def edit_message(self, user: UserId, message_id: MessageId, content: str) -> ChatMessage:
        validate_message(content)
        async with self._store.transaction(write=True) as tx:
            row = await self._queued(tx, user, message_id)
            await tx.run(
                "UPDATE chat_messages SET content = ? WHERE message_id = ?", content, message_id
            )
            touch_session(tx, row["worker_id"], row["chat_session_id"], row["machine_id"])
            return await load_message(tx, message_id)

    async def cancel_message(self, user: UserId, message_id: MessageId) -> None:
        async with self._store.transaction(write=True) as tx:
            row = await self._queued(tx, user, message_id)
            await tx.run("DELETE FROM chat_messages WHERE message_id = ?", message_id)
            touch_session(
                tx, row["worker_id"], row["chat_session_id"], row["machine_id"], turns=True
            )

    async def list_messages(self, user: UserId, session_id: ChatSessionId) -> list[ChatMessage]:
        return await self._session_read(user, session_id, lambda tx: messages_of(tx, session_id))

    async def _messages_page(
        self, user: UserId, session_id: ChatSessionId, after: str | None, count: int
    ) -> tuple[list[ChatMessage], bool]:
        page = partial(messages_page, session_id=session_id, after=after, limit=count)
        return await self._session_read(user, session_id, page)

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
        found = await self._requests(user, session_id, "permission_requests", include_answered)
        return [rows.permission(row) for row in found]

    async def answer_permission(
        self, user: UserId, permission_id: PermissionId, answer: PermissionAnswer
    ) -> PermissionRequest:
        answer = PermissionAnswer(answer)
        async with self._store.transaction(write=True) as tx:
            row = await tx.found(NO_PERMISSION, _OWNED_PERMISSION, permission_id, user)
            answered = replies.answer_permission(rows.permission(row), answer)
            await save_permission(tx, answered)
            touch_session(
                tx, row["worker_id"], row["chat_session_id"], row["machine_id"], requests=True
            )
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
            [("chat", session_id)], lambda: self._newest_messages(user, session_id)
        )

    async def _newest_messages(self, user: UserId, session_id: ChatSessionId) -> list[ChatMessage]:
        return list((await self.list_messages_page(user, session_id)).items[::-1])

    def watch_chunks(
        self, user: UserId, session_id: ChatSessionId, after_sequence: int
    ) -> AsyncGenerator[list[ChatChunk], None]:
        return self._follow_session(user, session_id, after_sequence, chunks_after, CHUNK_PAGE)

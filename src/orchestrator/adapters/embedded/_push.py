"""Push subscriptions, notification settings and waiting permission requests on SQLite.

Topics: ``("push", user_id)`` for a user's subscriptions and settings,
:data:`~orchestrator.adapters.embedded._chat.REQUESTS` for permission requests
of every session and :data:`~orchestrator.adapters.embedded._chat.TURNS` for
every session's turns (see ``touch_session``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from datetime import datetime
from functools import partial
from typing import Literal

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._chat import REQUESTS, TURNS
from orchestrator.adapters.embedded._machine_side import MACHINES, MachineSide
from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.records import from_row
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import UserId
from orchestrator.domain.notifications import (
    MAX_SUBSCRIPTIONS_PER_USER,
    NO_SUBSCRIPTION,
    TOO_MANY_SUBSCRIPTIONS,
    FinishedReply,
    NotificationSettings,
    OpenTurn,
    PushSubscription,
    SubscriptionDraft,
    WaitingPermission,
    seen_until,
)


def waiting_query(table: Literal["permission_requests", "question_requests"]) -> str:
    """Pending requests in ``table`` (of one user, or of all for NULL) with where they wait."""
    return f"""
    SELECT r.*, s.user_id, s.worker_id, w.name AS worker_name, w.directory, w.machine_id,
        m.name AS machine_name
    FROM {table} AS r
    JOIN chat_sessions AS s USING (chat_session_id)
    JOIN workers AS w ON w.worker_id = s.worker_id
    JOIN machines AS m ON m.machine_id = w.machine_id
    WHERE r.status = 'pending' AND (? IS NULL OR s.user_id = ?)
    ORDER BY r.created_at, r.rowid
"""  # noqa: S608 -- fixed names


_WAITING = waiting_query("permission_requests")


_OPEN_TURNS = """
    SELECT msg.message_id, msg.chat_session_id, msg.role, msg.status, msg.timestamp,
        msg.reply_to, s.user_id, s.worker_id, w.name AS worker_name, w.directory, w.machine_id,
        m.name AS machine_name, m.status = 'online' AS machine_online
    FROM chat_messages AS msg
    JOIN chat_sessions AS s USING (chat_session_id)
    JOIN workers AS w ON w.worker_id = s.worker_id
    JOIN machines AS m ON m.machine_id = w.machine_id
    WHERE msg.status IN ('pending', 'processing', 'streaming')
    ORDER BY msg.timestamp, msg.rowid
    LIMIT 1000
"""


# The index (user_id, finished_at) finds the rows; the joins read one row each, no texts.
_FINISHED = """
    SELECT f.*, s.worker_id, w.name AS worker_name, w.directory, w.machine_id,
        m.name AS machine_name
    FROM finished_replies AS f
    JOIN chat_sessions AS s USING (chat_session_id)
    JOIN workers AS w ON w.worker_id = s.worker_id
    JOIN machines AS m ON m.machine_id = w.machine_id
    WHERE f.user_id = ?
        AND f.finished_at > coalesce((SELECT seen_at FROM inbox_seen WHERE user_id = ?), -1)
    ORDER BY f.finished_at DESC, f.rowid DESC
    LIMIT ?
"""


_finished = partial(from_row, cls=FinishedReply)
_turn = partial(from_row, cls=OpenTurn)
_subscription = partial(from_row, cls=PushSubscription)
_waiting = partial(from_row, cls=WaitingPermission)


async def _known_user(tx: Tx, user: UserId) -> None:
    if await tx.one("SELECT 1 FROM users WHERE user_id = ?", user) is None:
        raise NotFound("No such user.")


class PushSide(MachineSide):
    """Implements :class:`~orchestrator.domain.ports.NotificationBackend`."""

    async def save_push_subscription(
        self, user: UserId, draft: SubscriptionDraft
    ) -> PushSubscription:
        async with self._store.transaction(write=True) as tx:
            await _known_user(tx, user)
            others = await tx.one(
                "SELECT count(*) FROM push_subscriptions WHERE user_id = ? AND endpoint != ?",
                user,
                draft.endpoint,
            )
            if others is not None and others[0] >= MAX_SUBSCRIPTIONS_PER_USER:
                raise Conflict(TOO_MANY_SUBSCRIPTIONS)
            previous = await tx.one(
                "SELECT user_id FROM push_subscriptions WHERE endpoint = ?", draft.endpoint
            )
            # One browser, one endpoint: whoever enabled it last receives its notifications.
            values = {
                "endpoint": draft.endpoint,
                "user_id": user,
                "p256dh": draft.p256dh,
                "auth": draft.auth,
                "created_at": self._now(),
            }
            await tx.upsert("push_subscriptions", values, key=("endpoint",), keep=("created_at",))
            tx.touch(("push", user))
            if previous is not None:
                tx.touch(("push", previous["user_id"]))
            row = await tx.one(
                "SELECT * FROM push_subscriptions WHERE endpoint = ?", draft.endpoint
            )
            assert row is not None
            return _subscription(row)

    async def delete_push_subscription(self, user: UserId, endpoint: str) -> None:
        async with self._store.transaction(write=True) as tx:
            deleted = await tx.run(
                "DELETE FROM push_subscriptions WHERE endpoint = ? AND user_id = ?", endpoint, user
            )
            if not deleted:
                raise NotFound(NO_SUBSCRIPTION)
            tx.touch(("push", user))

    async def list_push_subscriptions(self, user: UserId) -> list[PushSubscription]:
        async with self._store.transaction() as tx:
            found = await tx.all(
                "SELECT * FROM push_subscriptions WHERE user_id = ? ORDER BY created_at, rowid",
                user,
            )
        return [_subscription(row) for row in found]

    async def drop_push_subscription(self, endpoint: str) -> None:
        async with self._store.transaction(write=True) as tx:
            row = await tx.one(
                "SELECT user_id FROM push_subscriptions WHERE endpoint = ?", endpoint
            )
            if row is not None:
                await tx.run("DELETE FROM push_subscriptions WHERE endpoint = ?", endpoint)
                tx.touch(("push", row["user_id"]))

    async def get_notification_settings(self, user: UserId) -> NotificationSettings:
        async with self._store.transaction() as tx:
            await _known_user(tx, user)
            row = await tx.one("SELECT * FROM notification_settings WHERE user_id = ?", user)
        if row is None:
            return NotificationSettings()
        return from_row(row, NotificationSettings)

    async def save_notification_settings(
        self, user: UserId, settings: NotificationSettings
    ) -> NotificationSettings:
        async with self._store.transaction(write=True) as tx:
            await _known_user(tx, user)
            await tx.run(
                "INSERT OR REPLACE INTO notification_settings"
                " (user_id, events, quiet_start, quiet_end, time_zone) VALUES (?, ?, ?, ?, ?)",
                user,
                json.dumps(sorted(e.value for e in settings.events)),
                settings.quiet_start,
                settings.quiet_end,
                settings.time_zone,
            )
            tx.touch(("push", user))
        return await self.get_notification_settings(user)

    async def list_waiting_permissions(self, user: UserId | None) -> list[WaitingPermission]:
        async with self._store.transaction() as tx:
            return [_waiting(row) for row in await tx.all(_WAITING, user, user)]

    def watch_waiting_permissions(
        self, user: UserId | None
    ) -> AsyncGenerator[list[WaitingPermission], None]:
        return self._store.feed.watch([REQUESTS], lambda: self.list_waiting_permissions(user))

    async def list_finished_replies(self, user: UserId, limit: int) -> list[FinishedReply]:
        async with self._store.transaction() as tx:
            return [_finished(row) for row in await tx.all(_FINISHED, user, user, limit)]

    def watch_finished_replies(
        self, user: UserId, limit: int
    ) -> AsyncGenerator[list[FinishedReply], None]:
        return self._store.feed.watch(  # a reply's end touches TURNS
            [TURNS, ("inbox", user)], lambda: self.list_finished_replies(user, limit)
        )

    async def mark_inbox_seen(self, user: UserId, until: datetime) -> None:
        async with self._store.transaction(write=True) as tx:
            await _known_user(tx, user)
            row = await tx.one("SELECT seen_at FROM inbox_seen WHERE user_id = ?", user)
            previous = None if row is None else rows.from_ms(row["seen_at"])
            mark = seen_until(previous, until, rows.from_ms(self._now()))
            await tx.run(
                "INSERT OR REPLACE INTO inbox_seen (user_id, seen_at) VALUES (?, ?)",
                user,
                rows.to_ms(mark),
            )
            tx.touch(("inbox", user))

    async def list_open_turns(self) -> list[OpenTurn]:
        async with self._store.transaction() as tx:
            return [_turn(row) for row in await tx.all(_OPEN_TURNS)]

    def watch_open_turns(self) -> AsyncGenerator[list[OpenTurn], None]:
        return self._store.feed.watch([TURNS, MACHINES], self.list_open_turns)

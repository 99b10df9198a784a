"""Push subscriptions and notification settings for the ``InMemoryBackend``.

Same rules as the SQLite backend (``adapters/embedded/_push.py``); the contract
suite in ``tests/contract/test_push_contract.py`` holds both to them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import TypeVar

from orchestrator.domain import notifications
from orchestrator.domain.chat import (
    PermissionRequest,
    PermissionStatus,
)
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import (
    UserId,
)
from orchestrator.domain.model import MachineStatus
from orchestrator.testing._state_fake import FakeState, FinishedEnding

T = TypeVar("T")


class PushFake(FakeState):
    """The :class:`~orchestrator.domain.ports.NotificationBackend`, in dicts."""

    def _known_user(self, user: UserId) -> None:
        if user not in self.users:
            raise NotFound("No such user.")

    async def save_push_subscription(
        self, user: UserId, draft: notifications.SubscriptionDraft
    ) -> notifications.PushSubscription:
        self._known_user(user)
        others = [
            s
            for s in self.push_subscriptions.values()
            if s.user_id == user and s.endpoint != draft.endpoint
        ]
        if len(others) >= notifications.MAX_SUBSCRIPTIONS_PER_USER:
            raise Conflict(notifications.TOO_MANY_SUBSCRIPTIONS)
        previous = self.push_subscriptions.get(draft.endpoint)
        created_at = self._now() if previous is None else previous.created_at
        record = notifications.PushSubscription(
            user, draft.endpoint, draft.p256dh, draft.auth, created_at
        )
        self.push_subscriptions[draft.endpoint] = record
        await self._commit()
        return record

    async def delete_push_subscription(self, user: UserId, endpoint: str) -> None:
        found = self.push_subscriptions.get(endpoint)
        if found is None or found.user_id != user:
            raise NotFound(notifications.NO_SUBSCRIPTION)
        del self.push_subscriptions[endpoint]
        await self._commit()

    async def list_push_subscriptions(self, user: UserId) -> list[notifications.PushSubscription]:
        found = [s for s in self.push_subscriptions.values() if s.user_id == user]
        return sorted(found, key=lambda s: s.created_at)

    async def drop_push_subscription(self, endpoint: str) -> None:
        if self.push_subscriptions.pop(endpoint, None) is not None:
            await self._commit()

    async def get_notification_settings(self, user: UserId) -> notifications.NotificationSettings:
        self._known_user(user)
        return self.notification_settings.get(user, notifications.NotificationSettings())

    async def save_notification_settings(
        self, user: UserId, settings: notifications.NotificationSettings
    ) -> notifications.NotificationSettings:
        self._known_user(user)
        self.notification_settings[user] = settings
        await self._commit()
        return settings

    def _waiting(self, request: PermissionRequest) -> notifications.WaitingPermission:
        session = self.chat_sessions[request.chat_session_id]
        worker = self.workers[session.worker_id]
        machine = self.machines[worker.machine_id]
        return notifications.WaitingPermission(
            user_id=session.user_id,
            request=request,
            machine_id=machine.machine_id,
            machine_name=machine.name,
            worker_id=worker.worker_id,
            worker_label=notifications.worker_label(worker.name, worker.directory),
        )

    async def list_waiting_permissions(
        self, user: UserId | None
    ) -> list[notifications.WaitingPermission]:
        waiting = [
            self._waiting(p)
            for p in self.permissions.values()
            if p.status is PermissionStatus.PENDING and p.chat_session_id in self.chat_sessions
        ]
        mine = [w for w in waiting if user is None or w.user_id == user]
        return sorted(mine, key=lambda w: w.request.created_at)

    def watch_waiting_permissions(
        self, user: UserId | None
    ) -> AsyncGenerator[list[notifications.WaitingPermission], None]:
        return self._watch(lambda: self.list_waiting_permissions(user))

    def _finished(self, ending: FinishedEnding) -> notifications.FinishedReply | None:
        message = self.chat_messages.get(ending.message_id)
        session = None if message is None else self.chat_sessions.get(message.chat_session_id)
        if session is None:
            return None  # deleted with its session (SQLite cascades)
        worker = self.workers[session.worker_id]
        machine = self.machines[worker.machine_id]
        return notifications.FinishedReply(
            user_id=session.user_id,
            message_id=ending.message_id,
            chat_session_id=session.chat_session_id,
            status=ending.status,
            preview=ending.preview,
            finished_at=ending.finished_at,
            machine_id=machine.machine_id,
            machine_name=machine.name,
            worker_id=worker.worker_id,
            worker_label=notifications.worker_label(worker.name, worker.directory),
        )

    async def list_finished_replies(
        self, user: UserId, limit: int
    ) -> list[notifications.FinishedReply]:
        mark = self.inbox_seen.get(user)
        found = [
            reply
            for ending in self.finished_replies.values()
            if (mark is None or ending.finished_at > mark)
            and (reply := self._finished(ending)) is not None
            and reply.user_id == user
        ]
        # Newest first; of replies that ended at the same instant, the one recorded last.
        return sorted(reversed(found), key=lambda r: r.finished_at, reverse=True)[:limit]

    def watch_finished_replies(
        self, user: UserId, limit: int
    ) -> AsyncGenerator[list[notifications.FinishedReply], None]:
        return self._watch(lambda: self.list_finished_replies(user, limit))

    async def mark_inbox_seen(self, user: UserId, until: datetime) -> None:
        self._known_user(user)
        self.inbox_seen[user] = notifications.seen_until(
            self.inbox_seen.get(user), until, self._now()
        )
        await self._commit()

    async def list_open_turns(self) -> list[notifications.OpenTurn]:
        turns = []
        for message in self.chat_messages.values():
            session = self.chat_sessions.get(message.chat_session_id)
            if message.status.finished or session is None:
                continue
            worker = self.workers[session.worker_id]
            machine = self.machines[worker.machine_id]
            turns.append(
                notifications.OpenTurn(
                    user_id=session.user_id,
                    message=notifications.OpenMessage.of(message),
                    machine_id=machine.machine_id,
                    machine_name=machine.name,
                    machine_online=machine.status is MachineStatus.ONLINE,
                    worker_id=worker.worker_id,
                    worker_label=notifications.worker_label(worker.name, worker.directory),
                )
            )
        return sorted(turns, key=lambda t: t.message.timestamp)

    def watch_open_turns(self) -> AsyncGenerator[list[notifications.OpenTurn], None]:
        return self._watch(self.list_open_turns)

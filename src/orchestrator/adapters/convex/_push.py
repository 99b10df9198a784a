"""Push subscriptions, notification settings and waiting permissions on Convex.

Calls ``backend_convex/convex/notifications.ts`` with the server secret; the
records are converted by :mod:`orchestrator.adapters.records`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from functools import partial

from orchestrator.adapters.convex import _wire as wire
from orchestrator.adapters.convex._calls import ConvexCalls
from orchestrator.adapters.records import from_document, to_document
from orchestrator.domain.ids import UserId
from orchestrator.domain.notifications import (
    FinishedReply,
    NotificationSettings,
    OpenTurn,
    PushSubscription,
    SubscriptionDraft,
    WaitingPermission,
)

_subscription = partial(from_document, cls=PushSubscription)
_finished = partial(from_document, cls=FinishedReply)
_turn = partial(from_document, cls=OpenTurn)


class ConvexPushSide(ConvexCalls):
    """Implements :class:`~orchestrator.domain.ports.NotificationBackend` on Convex."""

    async def save_push_subscription(
        self, user: UserId, draft: SubscriptionDraft
    ) -> PushSubscription:
        args = self._server(
            userId=user, endpoint=draft.endpoint, p256dh=draft.p256dh, auth=draft.auth
        )
        return _subscription(await self._call("mutation", "notifications:subscribe", args))

    async def delete_push_subscription(self, user: UserId, endpoint: str) -> None:
        args = self._server(userId=user, endpoint=endpoint)
        await self._call("mutation", "notifications:unsubscribe", args)

    async def list_push_subscriptions(self, user: UserId) -> list[PushSubscription]:
        found = await self._call(
            "query", "notifications:listSubscriptions", self._server(userId=user)
        )
        return [_subscription(s) for s in found]

    async def drop_push_subscription(self, endpoint: str) -> None:
        await self._call("mutation", "notifications:drop", self._server(endpoint=endpoint))

    async def get_notification_settings(self, user: UserId) -> NotificationSettings:
        raw = await self._call("query", "notifications:getSettings", self._server(userId=user))
        return from_document(raw, NotificationSettings)

    async def save_notification_settings(
        self, user: UserId, settings: NotificationSettings
    ) -> NotificationSettings:
        out = to_document(settings)
        await self._call(
            "mutation", "notifications:saveSettings", self._server(userId=user, settings=out)
        )
        return await self.get_notification_settings(user)

    async def list_waiting_permissions(self, user: UserId | None) -> list[WaitingPermission]:
        return await self._list_waiting("notifications:listWaiting", user, WaitingPermission)

    def watch_waiting_permissions(
        self, user: UserId | None
    ) -> AsyncGenerator[list[WaitingPermission], None]:
        return self._watch_waiting("notifications:listWaiting", user, WaitingPermission)

    async def list_finished_replies(self, user: UserId, limit: int) -> list[FinishedReply]:
        args = self._server(userId=user, limit=limit)
        return [_finished(r) for r in await self._call("query", "notifications:listFinished", args)]

    def watch_finished_replies(
        self, user: UserId, limit: int
    ) -> AsyncGenerator[list[FinishedReply], None]:
        return self._watch(
            "notifications:listFinished",
            self._server(userId=user, limit=limit),
            lambda found: [_finished(r) for r in found],
        )

    async def mark_inbox_seen(self, user: UserId, until: datetime) -> None:
        args = self._server(userId=user, until=wire.to_ms(until))
        await self._call("mutation", "notifications:markSeen", args)

    async def list_open_turns(self) -> list[OpenTurn]:
        found = await self._call("query", "notifications:listOpenTurns", self._server())
        return [_turn(t) for t in found]

    def watch_open_turns(self) -> AsyncGenerator[list[OpenTurn], None]:
        return self._watch(
            "notifications:listOpenTurns", self._server(), lambda found: [_turn(t) for t in found]
        )

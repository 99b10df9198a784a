"""The notifier: tells users by Web Push when the agent needs them.

It watches the backend (one server-wide subscription, no polling per request)
and, for each event a user wants outside their quiet hours, sends the
notification to each of the user's browsers and phones. Deliveries run in the
notifier's own task group, so a slow or failing push service never blocks a
chat stream or a request: 429/5xx are retried with backoff, 404/410 forget the
subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import attrs
from anyio.abc import TaskGroup

from orchestrator.application.retry import Backoff, keep_reachable
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.ids import PermissionId, UserId
from orchestrator.domain.notifications import (
    Delivery,
    Notification,
    PushReply,
    PushSubscription,
    WaitingPermission,
    permission_notification,
    wants,
)
from orchestrator.domain.ports import Clock, NotificationBackend

log = logging.getLogger(__name__)

#: Sends an encrypted payload to one subscription's push service.
Send = Callable[[PushSubscription, bytes], Awaitable[PushReply]]


@attrs.frozen
class NotifierPolicy:
    """How hard the notifier tries to deliver one message."""

    attempts: int = 5
    backoff: Backoff = attrs.field(factory=lambda: Backoff(base=2.0, cap=300.0))


class Notifier:
    """Watches for what waits for users and pushes notifications; run it with :meth:`run`."""

    def __init__(
        self,
        backend: NotificationBackend,
        send: Send,
        clock: Clock,
        policy: NotifierPolicy | None = None,
    ) -> None:
        self._backend = backend
        self._send = send
        self._clock = clock
        self._policy = policy or NotifierPolicy()
        self._tasks: TaskGroup | None = None
        #: Requests already known, so each is notified once (None: not looked yet).
        self._seen: set[PermissionId] | None = None

    async def run(self) -> None:
        """Watch and deliver until cancelled."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            await keep_reachable(
                self._watch_permissions, self._policy.backoff, log.warning, "notifications"
            )

    async def _watch_permissions(self) -> None:
        async for waiting in self._backend.watch_waiting_permissions(None):
            current = {w.request.permission_id for w in waiting}
            if self._seen is not None:
                for item in waiting:
                    if item.request.permission_id not in self._seen:
                        await self._permission_asked(item)
            # Requests waiting when the server started were asked while nobody watched;
            # the inbox shows them, a burst of old notifications would not help.
            self._seen = current

    async def _permission_asked(self, waiting: WaitingPermission) -> None:
        await self.notify(waiting.user_id, permission_notification(waiting))

    async def notify(self, user: UserId, notification: Notification) -> int:
        """Queue ``notification`` for each of the user's devices, if they want it now.

        Returns how many deliveries were queued; they run in the background.
        """
        assert self._tasks is not None, "start the notifier with run() first"
        try:
            settings = await self._backend.get_notification_settings(user)
            if not wants(settings, notification.event, self._clock.now()):
                return 0
            subscriptions = await self._backend.list_push_subscriptions(user)
        except OrchestratorError as exc:
            log.warning("Could not look up where to notify %s: %s", user, exc.message)
            return 0
        payload = notification.payload()
        for subscription in subscriptions:
            self._tasks.start_soon(self._deliver, subscription, payload)
        return len(subscriptions)

    async def _deliver(self, subscription: PushSubscription, payload: bytes) -> None:
        policy = self._policy
        for attempt in range(policy.attempts):
            reply = await self._send(subscription, payload)
            outcome = reply.delivery()
            if outcome is Delivery.SENT:
                return
            if outcome is Delivery.GONE:
                log.info("A push subscription is gone (%s); forgetting it.", reply.status)
                await self._forget(subscription)
                return
            if outcome is Delivery.REFUSED:
                log.warning("The push service refused a notification (%s).", reply.status)
                return
            if attempt + 1 < policy.attempts:
                fallback = max(policy.backoff.delay(attempt), policy.backoff.base / 10)
                await anyio.sleep(reply.retry_delay(fallback, policy.backoff.cap))
        log.warning("Gave up on a notification after %d attempts.", policy.attempts)

    async def _forget(self, subscription: PushSubscription) -> None:
        try:
            await self._backend.drop_push_subscription(subscription.endpoint)
        except OrchestratorError as exc:
            log.warning("Could not forget a gone push subscription: %s", exc.message)

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
from datetime import timedelta
from typing import Generic, TypeVar

import anyio
import attrs
from anyio.abc import TaskGroup

from orchestrator.application.retry import Backoff, Connection, keep_reachable
from orchestrator.domain.chat import ChatMessage, MessageRole, MessageStatus
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineId,
    MessageId,
    UserId,
)
from orchestrator.domain.notifications import (
    Delivery,
    Notification,
    OpenTurn,
    PushReply,
    PushSubscription,
    WaitingPermission,
    job_failed_notification,
    machine_offline_notification,
    permission_notification,
    question_notification,
    reply_notification,
    wants,
)
from orchestrator.domain.paging import MAX_PAGE
from orchestrator.domain.ports import Clock, ServerBackend
from orchestrator.domain.questions import WaitingQuestion

#: Pages of a session's newest messages searched for a reply that just ended.
FINISHED_REPLY_PAGES = 5

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Sends an encrypted payload to one subscription's push service.
Send = Callable[[PushSubscription, bytes], Awaitable[PushReply]]


@attrs.frozen
class NotifierPolicy:
    """How hard the notifier tries to deliver one message."""

    attempts: int = 5
    #: A reply that took at least this long is notified when it finishes.
    long_reply: timedelta = timedelta(seconds=30)
    backoff: Backoff = attrs.field(factory=lambda: Backoff(base=2.0, cap=300.0))


@attrs.define
class _Known(Generic[T]):
    """Waiting items already known (by ``key``), so each is notified once.

    Those waiting at the first look were asked while nobody watched; the inbox
    shows them, a burst of old notifications would not help.
    """

    key: Callable[[T], str]
    #: None: not looked yet.
    seen: set[str] | None = None

    def fresh(self, items: list[T]) -> list[T]:
        """The items not seen at the last look (none at the first)."""
        seen = self.seen
        return [] if seen is None else [item for item in items if self.key(item) not in seen]

    def saw(self, items: list[T]) -> None:
        """Remember ``items`` as the last look."""
        self.seen = {self.key(item) for item in items}


class Notifier:
    """Watches for what waits for users and pushes notifications; run it with :meth:`run`."""

    def __init__(
        self,
        backend: ServerBackend,
        send: Send,
        clock: Clock,
        policy: NotifierPolicy | None = None,
    ) -> None:
        self._backend = backend
        self._send = send
        self._clock = clock
        self._policy = policy or NotifierPolicy()
        self._tasks: TaskGroup | None = None
        self._permissions: _Known[WaitingPermission] = _Known(lambda w: w.request.permission_id)
        self._questions: _Known[WaitingQuestion] = _Known(lambda w: w.request.question_id)
        #: Unfinished messages at the last look (None: not looked yet).
        self._turns: dict[MessageId, OpenTurn] | None = None

    async def run(self) -> None:
        """Watch and deliver until cancelled."""
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            # One connection for both watches: an outage is one line in the log, not two.
            connection = Connection(log.warning)
            tasks.start_soon(keep_reachable, self._watch_turns, self._policy.backoff, connection)
            tasks.start_soon(
                keep_reachable, self._watch_questions, self._policy.backoff, connection
            )
            await keep_reachable(self._watch_permissions, self._policy.backoff, connection)

    async def _watch_permissions(self) -> None:
        async for waiting in self._backend.watch_waiting_permissions(None):
            for item in self._permissions.fresh(waiting):
                await self._permission_asked(item)
            self._permissions.saw(waiting)

    async def _watch_questions(self) -> None:
        async for waiting in self._backend.watch_waiting_questions(None):
            for item in self._questions.fresh(waiting):
                await self.notify(item.user_id, question_notification(item))
            self._questions.saw(waiting)

    async def _watch_turns(self) -> None:
        async for turns in self._backend.watch_open_turns():
            previous, self._turns = self._turns, {t.message.message_id: t for t in turns}
            if previous is None:
                continue
            for message_id, turn in previous.items():
                if message_id not in self._turns and turn.message.role is MessageRole.ASSISTANT:
                    await self._reply_finished(turn)
            await self._machines_gone(previous, turns)

    async def _reply_finished(self, turn: OpenTurn) -> None:
        reply, user = turn.message, turn.user_id
        try:
            final = await self._newest(user, reply.chat_session_id, reply.message_id)
        except OrchestratorError:
            return  # the session went away with its worker or machine
        if final is None or final.status is MessageStatus.ABORTED:
            return  # stopped by the user, who knows
        succeeded = final.status is MessageStatus.COMPLETED
        if not succeeded and (job := await self._job_of(user, reply.reply_to)) is not None:
            await self.notify(user, job_failed_notification(turn, job))
            return
        elapsed = self._clock.now() - reply.timestamp
        if elapsed >= self._policy.long_reply:
            await self.notify(user, reply_notification(turn, succeeded, elapsed))

    async def _newest(
        self, user: UserId, session_id: ChatSessionId, message_id: MessageId
    ) -> ChatMessage | None:
        """A message among the session's newest pages (a reply that just ended is there)."""
        cursor: str | None = None
        for _ in range(FINISHED_REPLY_PAGES):
            page = await self._backend.list_messages_page(user, session_id, cursor, MAX_PAGE)
            found = next((m for m in page.items if m.message_id == message_id), None)
            if found is not None or page.cursor is None:
                return found
            cursor = page.cursor
        return None

    async def _job_of(self, user: UserId, question: MessageId | None) -> str | None:
        """The name of the job whose run sent ``question``, if one did."""
        if question is None:
            return None
        try:
            for job in await self._backend.list_jobs(user):
                runs = await self._backend.list_job_runs(user, job.job_id, limit=5)
                if any(run.message_id == question for run in runs):
                    return job.name
        except OrchestratorError:
            return None
        return None

    async def _machines_gone(
        self, previous: dict[MessageId, OpenTurn], turns: list[OpenTurn]
    ) -> None:
        was_online = {t.machine_id for t in previous.values() if t.machine_online}
        stranded: dict[tuple[MachineId, UserId], list[OpenTurn]] = {}
        for turn in turns:
            if not turn.machine_online and turn.machine_id in was_online:
                stranded.setdefault((turn.machine_id, turn.user_id), []).append(turn)
        for (_, user), waiting in stranded.items():
            await self.notify(user, machine_offline_notification(waiting))

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
            try:
                reply = await self._send(subscription, payload)
            except Exception:
                # One bad delivery must never stop the notifier's other work.
                log.exception("Sending a notification failed")
                return
            outcome = reply.delivery()
            if outcome is Delivery.SENT:
                return
            if outcome is Delivery.GONE:
                log.info("A push subscription is gone (%s); forgetting it.", reply.status)
                await self._forget(subscription)
                return
            if outcome is Delivery.REFUSED:
                log.warning(
                    "A notification was refused (%s).", reply.error or f"status {reply.status}"
                )
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

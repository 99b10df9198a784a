"""Web Push against the loopback stand-in: VAPID keys, encryption, retries, gone subscriptions."""

from __future__ import annotations

import base64
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orchestrator.adapters.push import WebPushSender, load_vapid_keys
from orchestrator.application.notifications import Notifier, NotifierPolicy
from orchestrator.application.retry import Backoff
from orchestrator.domain.chat import ChatSession, MessageStatus
from orchestrator.domain.ids import MachineToken, MessageId, UserId
from orchestrator.domain.jobs import JobDraft
from orchestrator.domain.model import Machine, Worker
from orchestrator.domain.notifications import (
    NotificationSettings,
    PushEvent,
    PushSubscription,
    SubscriptionDraft,
    parse_subscription,
)
from orchestrator.domain.ports import Backend
from orchestrator.domain.questions import Question, QuestionOption
from orchestrator.domain.replies import PermissionAsk, QuestionAsk
from orchestrator.testing import FakeClock, InMemoryBackend
from orchestrator.testing.push_service import StandInPushService

pytestmark = pytest.mark.anyio

CONTACT = "mailto:admin@example.com"
FAST = NotifierPolicy(attempts=3, backoff=Backoff(base=0.01, cap=0.05))


@pytest.fixture
async def service() -> AsyncIterator[StandInPushService]:
    started = await StandInPushService().start()
    yield started
    await started.stop()


@pytest.fixture
async def sender(tmp_path: Path) -> AsyncIterator[WebPushSender]:
    made = WebPushSender(load_vapid_keys(tmp_path), CONTACT)
    yield made
    await made.close()


async def _subscribed(
    backend: Backend, user: UserId, service: StandInPushService, key: str
) -> PushSubscription:
    draft = parse_subscription(service.subscribe(key), allow_loopback_http=True)
    return await backend.save_push_subscription(user, draft)


def test_vapid_keys_are_made_once_and_private(tmp_path: Path) -> None:
    """The first start makes a 0600 key file; later starts read the same key."""
    first = load_vapid_keys(tmp_path / "data")
    assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    again = load_vapid_keys(tmp_path / "data")
    assert again.application_server_key == first.application_server_key
    assert len(first.application_server_key) == 87  # 65 bytes, base64url


async def test_a_message_arrives_encrypted_and_signed(
    tmp_path: Path, service: StandInPushService, sender: WebPushSender
) -> None:
    """The stand-in decrypts the payload with the subscription's keys and verifies VAPID."""
    backend = InMemoryBackend()
    user = (await backend.create_user("alice", "h")).user_id
    key = load_vapid_keys(tmp_path).application_server_key
    subscription = await _subscribed(backend, user, service, key)
    reply = await sender.send(subscription, b'{"title":"Hello","body":"World"}')
    assert reply.status == 201
    [received] = service.received
    assert received.payload == {"title": "Hello", "body": "World"}
    assert received.claims["aud"] == service.base_url
    assert received.claims["sub"] == CONTACT
    assert received.ttl > 0
    assert service.refused == []


async def test_the_stand_in_refuses_a_signature_from_another_key(
    tmp_path: Path, service: StandInPushService, sender: WebPushSender
) -> None:
    """A subscription made for another server's key refuses this server's messages (403)."""
    backend = InMemoryBackend()
    user = (await backend.create_user("alice", "h")).user_id
    other = load_vapid_keys(tmp_path / "other").application_server_key
    subscription = await _subscribed(backend, user, service, other)
    reply = await sender.send(subscription, b"{}")
    assert reply.status == 403
    assert service.received == []
    assert service.refused == ["The VAPID key is not the one the subscription was made with."]


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(notifier.run)
        yield
        tasks.cancel_scope.cancel()


@asynccontextmanager
async def notifying(
    scene: PermissionScene, sender: WebPushSender, policy: NotifierPolicy = FAST
) -> AsyncIterator[None]:
    """The scene's notifier running (and settled into its watch) inside the block."""
    async with running(Notifier(scene.backend, sender.send, scene.backend.clock, policy)):
        await anyio.sleep(0.05)
        yield


async def _until(condition: Callable[[], object], what: str) -> None:
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)


@attrs.define
class PermissionScene:
    """Alice's machine and session, a subscription, and a way to ask permission."""

    backend: InMemoryBackend
    user: UserId
    token: MachineToken
    machine: Machine
    worker: Worker
    session: ChatSession
    reply_id: MessageId | None = None

    @classmethod
    async def make(cls) -> PermissionScene:
        backend = InMemoryBackend(clock=FakeClock())
        user = (await backend.create_user("alice", "h")).user_id
        machine, token = await backend.create_machine(user, "laptop")
        await backend.go_online(token, "/home/alice")
        worker = await backend.add_worker(user, machine.machine_id, "repo", "api")
        await backend.update_worker_models(token, worker.worker_id, ["fake/small"])
        session = await backend.start_session(user, worker.worker_id, "fake/small")
        return cls(backend, user, token, machine, worker, session)

    async def ask(self, tool: str = "bash", description: str = "cat ~/.ssh/id_rsa") -> str:
        if self.reply_id is not None:
            await self.backend.complete_message(self.token, self.reply_id, "done")
        message = await self.backend.send_message(self.user, self.session.chat_session_id, "go")
        reply = await self.backend.claim_message(self.token, message.message_id)
        self.reply_id = reply.message_id
        request = await self.backend.record_permission(
            self.token, reply.message_id, PermissionAsk("per_1", tool, description)
        )
        return request.permission_id


async def test_an_asked_permission_sends_one_notification_with_actions(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """Title, a short line without the command, the session URL, and Allow/Deny."""
    async with notifying(scene, sender):
        permission_id = await scene.ask()
        await _until(lambda: service.received, "a notification")
        await anyio.sleep(0.1)
    [received] = service.received
    payload = received.payload
    assert payload["title"] == "Permission needed on laptop"
    assert payload["body"] == "The agent in api wants to use bash."
    assert "ssh" not in str(payload)
    assert payload["url"] == (
        f"/chat?machine={scene.machine.machine_id}&worker={scene.worker.worker_id}"
        f"&session={scene.session.chat_session_id}"
    )
    assert payload["permissionId"] == permission_id
    assert [a["action"] for a in payload["actions"]] == ["allow", "deny"]
    assert payload["event"] == "permission"


async def test_requests_waiting_before_the_notifier_starts_are_not_notified(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """Only requests asked while it watches are pushed; the inbox shows the older ones."""
    await scene.ask()
    assert scene.reply_id is not None
    async with notifying(scene, sender):
        newer = await scene.backend.record_permission(
            scene.token, scene.reply_id, PermissionAsk("per_2", "bash", "ls")
        )
        await _until(lambda: service.received, "a notification")
        await anyio.sleep(0.1)
    assert [r.payload["permissionId"] for r in service.received] == [newer.permission_id]


async def test_an_asked_question_sends_one_notification_that_opens_its_session(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """A question: a title and a short line (not the question), the session's URL, no actions."""
    async with notifying(scene, sender):
        message = await scene.backend.send_message(scene.user, scene.session.chat_session_id, "go")
        reply = await scene.backend.claim_message(scene.token, message.message_id)
        secret = Question("Use the key in ~/.ssh/id_rsa?", "Key", (QuestionOption("Yes"),))
        await scene.backend.record_question(
            scene.token, reply.message_id, QuestionAsk("que_1", [secret])
        )
        await _until(lambda: service.received, "a notification")
        await anyio.sleep(0.1)
    [received] = service.received
    payload = received.payload
    assert (payload["title"], payload["body"]) == (
        "A question on laptop",
        "The agent in api asks you something.",
    )
    assert "ssh" not in str(payload)
    assert payload["url"] == (
        f"/chat?machine={scene.machine.machine_id}&worker={scene.worker.worker_id}"
        f"&session={scene.session.chat_session_id}"
    )
    assert "actions" not in payload or payload["actions"] == []


async def test_a_gone_subscription_is_forgotten(
    tmp_path: Path, service: StandInPushService, sender: WebPushSender
) -> None:
    """410 from the push service removes the subscription; nothing is retried."""
    scene = await PermissionScene.make()
    key = load_vapid_keys(tmp_path).application_server_key
    subscription = await _subscribed(scene.backend, scene.user, service, key)
    service.unsubscribe(subscription.endpoint)
    async with notifying(scene, sender):
        await scene.ask()
        await _until(lambda: not scene.backend.push_subscriptions, "the subscription to go")
    assert service.answered == [410]


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_busy_push_services_are_retried_with_backoff(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender, status: int
) -> None:
    """429 and 5xx are tried again; the message arrives once the service accepts."""
    service.answer_next(status, status, retry_after="0" if status == 429 else None)
    async with notifying(scene, sender):
        await scene.ask()
        await _until(lambda: service.received, "the retried notification")
    assert service.answered == [status, status]
    assert len(service.received) == 1
    assert len(scene.backend.push_subscriptions) == 1


async def test_the_notifier_gives_up_after_its_attempts(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """A service that keeps failing gets ``attempts`` tries; the subscription stays."""
    service.answer_next(502, 502, 502, 502)
    async with notifying(scene, sender):
        await scene.ask()
        await _until(lambda: len(service.answered) == 3, "three attempts")
        await anyio.sleep(0.2)
    assert service.answered == [502, 502, 502]
    assert service.received == []
    assert len(scene.backend.push_subscriptions) == 1


async def test_settings_silence_events_and_quiet_hours(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """No notification for an event turned off, nor during quiet hours."""
    off = NotificationSettings(events=frozenset({PushEvent.JOB_FAILED}))
    quiet = NotificationSettings(quiet_start="00:00", quiet_end="23:59")  # FakeClock: 00:00 UTC
    notifier = Notifier(scene.backend, sender.send, scene.backend.clock, FAST)
    async with running(notifier):
        for settings in (off, quiet):
            await scene.backend.save_notification_settings(scene.user, settings)
            await anyio.sleep(0.05)
            await scene.ask()
            await anyio.sleep(0.2)
    assert service.received == []
    assert service.answered == []


async def _received_after(
    service: StandInPushService, scene: PermissionScene, sender: WebPushSender, act: Any
) -> list[dict[str, Any]]:
    """Run the notifier around ``act()``; the payloads the stand-in accepted."""
    policy = NotifierPolicy(
        attempts=3, backoff=Backoff(0.01, 0.05), long_reply=timedelta(seconds=30)
    )
    async with notifying(scene, sender, policy):
        await act()
        await anyio.sleep(0.3)
    assert service.refused == []
    return [r.payload for r in service.received]


@pytest.fixture
async def scene(tmp_path: Path, service: StandInPushService) -> PermissionScene:
    made = await PermissionScene.make()
    await _subscribed(
        made.backend, made.user, service, load_vapid_keys(tmp_path).application_server_key
    )
    return made


async def _reply(scene: PermissionScene, lasting: float) -> MessageId:
    """A new message's reply, claimed and streaming for ``lasting`` seconds of the fake clock."""
    message = await scene.backend.send_message(scene.user, scene.session.chat_session_id, "go")
    reply = await scene.backend.claim_message(scene.token, message.message_id)
    await anyio.sleep(0.05)  # the notifier sees it streaming, as it would over a real turn
    scene.backend.clock.advance(lasting)  # type: ignore[attr-defined]
    return reply.message_id


async def _completed_reply(scene: PermissionScene, lasting: float) -> None:
    """A reply that streamed for ``lasting`` seconds, then completed."""
    await scene.backend.complete_message(scene.token, await _reply(scene, lasting), "done")


async def test_a_long_reply_is_notified_when_it_finishes(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """A reply that took 31 s (threshold 30 s) sends one 'Reply ready' for its session."""
    act = partial(_completed_reply, scene, 31)
    [payload] = await _received_after(service, scene, sender, act)
    assert (payload["title"], payload["event"]) == ("Reply ready in api", "long_reply")
    assert payload["body"] == "The agent on laptop finished after 31 s."
    assert payload["url"].endswith(f"session={scene.session.chat_session_id}")


async def test_short_and_stopped_replies_are_not_notified(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """Under the threshold, or stopped by the user: no notification."""

    async def act() -> None:
        await _completed_reply(scene, 5)
        await anyio.sleep(0.05)
        stopped = await _reply(scene, 300)
        await scene.backend.end_reply(scene.token, stopped, MessageStatus.ABORTED, "Stopped.")

    assert await _received_after(service, scene, sender, act) == []


async def test_a_failed_job_run_is_notified_with_the_jobs_name(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """A run whose reply fails sends 'Job failed' whatever its duration."""
    draft = JobDraft(
        scene.worker.worker_id, "Nightly tests", "fake/small", "Run them.", "0 3 * * *"
    )
    job = await scene.backend.create_job(scene.user, draft, None)

    async def act() -> None:
        run = await scene.backend.run_job_now(scene.user, job.job_id)
        assert run.message_id is not None
        reply = await scene.backend.claim_message(scene.token, run.message_id)
        await anyio.sleep(0.05)
        await scene.backend.end_reply(scene.token, reply.message_id, MessageStatus.FAILED, "Boom.")

    [payload] = await _received_after(service, scene, sender, act)
    assert (payload["title"], payload["event"]) == ("Job failed: Nightly tests", "job_failed")


async def test_a_machine_going_offline_with_work_waiting_is_notified(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """Silent machine marked offline while a message waits: one notification; idle: none."""
    other, other_token = await scene.backend.create_machine(scene.user, "desktop")
    await scene.backend.go_online(other_token, "/srv")

    async def act() -> None:
        await scene.backend.send_message(scene.user, scene.session.chat_session_id, "later")
        await anyio.sleep(0.05)
        cutoff = scene.backend.clock.now() + timedelta(minutes=1)
        assert sorted(await scene.backend.mark_stale_machines_offline(cutoff)) == sorted(
            [scene.machine.machine_id, other.machine_id]
        )

    [payload] = await _received_after(service, scene, sender, act)
    assert payload["title"] == "laptop went offline"
    assert payload["body"] == "1 session is waiting for it. Start the machine again to carry on."
    assert payload["event"] == "machine_offline"


async def test_a_subscription_that_cannot_be_encrypted_for_does_not_stop_the_notifier(
    scene: PermissionScene, service: StandInPushService, sender: WebPushSender
) -> None:
    """Keys off the curve (stored before a check) are refused; other devices still get theirs."""
    broken = SubscriptionDraft(
        "https://push.invalid/x",
        base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode(),
        "A" * 22,
    )
    await scene.backend.save_push_subscription(scene.user, broken)
    payloads = await _received_after(service, scene, sender, scene.ask)
    assert [p["event"] for p in payloads] == ["permission"]
    assert len(scene.backend.push_subscriptions) == 2

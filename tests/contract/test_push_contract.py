"""The backend contract for push subscriptions, notification settings and waiting requests."""

from __future__ import annotations

from contextlib import aclosing

import anyio
import pytest

from orchestrator.domain.chat import MAX_MESSAGE_LENGTH, PermissionAnswer
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import UserId
from orchestrator.domain.notifications import (
    ALL_EVENTS,
    MAX_SUBSCRIPTIONS_PER_USER,
    NotificationSettings,
    OpenMessage,
    PushEvent,
    SubscriptionDraft,
)
from orchestrator.domain.ports import Backend
from orchestrator.domain.replies import PermissionAsk
from tests.contract.conftest import Chat, MachineFactory, ask, claimed

pytestmark = pytest.mark.anyio

KEY = "B" + "A" * 86  # shape only: the backend stores what the domain validated
AUTH = "A" * 22


def draft(n: int = 1, auth: str = AUTH) -> SubscriptionDraft:
    return SubscriptionDraft(f"https://push.example/send/{n}", KEY, auth)


async def test_subscriptions_belong_to_their_user(
    backend: Backend, alice: UserId, bob: UserId
) -> None:
    """A user lists only their own subscriptions and cannot delete another's."""
    first = await backend.save_push_subscription(alice, draft(1))
    second = await backend.save_push_subscription(alice, draft(2))
    assert (first.user_id, first.endpoint, first.p256dh, first.auth) == (
        alice,
        "https://push.example/send/1",
        KEY,
        AUTH,
    )
    assert await backend.list_push_subscriptions(alice) == [first, second]
    assert await backend.list_push_subscriptions(bob) == []
    with pytest.raises(NotFound, match=r"^No such push subscription\.$"):
        await backend.delete_push_subscription(bob, first.endpoint)
    await backend.delete_push_subscription(alice, first.endpoint)
    assert await backend.list_push_subscriptions(alice) == [second]
    with pytest.raises(NotFound):
        await backend.delete_push_subscription(alice, first.endpoint)


async def test_the_same_endpoint_is_renewed_and_moves_to_who_enabled_it_last(
    backend: Backend, alice: UserId, bob: UserId
) -> None:
    """Saving a known endpoint replaces its keys; from another account it changes hands."""
    await backend.save_push_subscription(alice, draft(1))
    renewed = await backend.save_push_subscription(alice, draft(1, auth="B" * 22))
    assert [s.auth for s in await backend.list_push_subscriptions(alice)] == ["B" * 22]
    moved = await backend.save_push_subscription(bob, draft(1))
    assert (moved.user_id, moved.endpoint) == (bob, renewed.endpoint)
    assert await backend.list_push_subscriptions(alice) == []
    assert await backend.list_push_subscriptions(bob) == [moved]


async def test_a_user_has_a_bounded_number_of_subscriptions(
    backend: Backend, alice: UserId
) -> None:
    """One more device than the limit is a Conflict; renewing a known one still works."""
    for n in range(MAX_SUBSCRIPTIONS_PER_USER):
        await backend.save_push_subscription(alice, draft(n))
    with pytest.raises(Conflict, match=r"devices with notifications already"):
        await backend.save_push_subscription(alice, draft(999))
    await backend.save_push_subscription(alice, draft(0, auth="C" * 22))
    assert len(await backend.list_push_subscriptions(alice)) == MAX_SUBSCRIPTIONS_PER_USER


async def test_a_gone_subscription_is_dropped_whoever_owns_it(
    backend: Backend, alice: UserId
) -> None:
    """The notifier drops an endpoint the push service gave up on; twice is harmless."""
    await backend.save_push_subscription(alice, draft(1))
    await backend.drop_push_subscription(draft(1).endpoint)
    await backend.drop_push_subscription(draft(1).endpoint)
    assert await backend.list_push_subscriptions(alice) == []


async def test_notification_settings_default_and_replace(
    backend: Backend, alice: UserId, bob: UserId
) -> None:
    """Every event and no quiet hours until saved; saved settings are the user's alone."""
    assert await backend.get_notification_settings(alice) == NotificationSettings()
    chosen = NotificationSettings(
        events=frozenset({PushEvent.PERMISSION}),
        quiet_start="22:00",
        quiet_end="07:00",
        time_zone="Europe/Berlin",
    )
    assert await backend.save_notification_settings(alice, chosen) == chosen
    assert await backend.get_notification_settings(alice) == chosen
    assert (await backend.get_notification_settings(bob)).events == ALL_EVENTS
    cleared = NotificationSettings(events=frozenset())
    assert await backend.save_notification_settings(alice, cleared) == cleared


async def test_unknown_users_have_no_settings(backend: Backend) -> None:
    """Settings and subscriptions of an ID that is no account are NotFound."""
    with pytest.raises(NotFound):
        await backend.get_notification_settings(UserId("usr_nobody"))
    with pytest.raises(NotFound):
        await backend.save_push_subscription(UserId("usr_nobody"), draft())


async def test_waiting_permissions_list_across_machines_and_users(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Pending requests are listed with their machine and worker, per user or for everyone."""
    reply = await claimed(backend, alice, chat)
    asked = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("p1", "bash", "ls")
    )
    [waiting] = await backend.list_waiting_permissions(alice)
    assert (waiting.user_id, waiting.request, waiting.machine_name, waiting.worker_label) == (
        alice,
        asked,
        "laptop",
        "repo",
    )
    assert (waiting.machine_id, waiting.worker_id) == (
        chat.machine.machine_id,
        chat.worker.worker_id,
    )
    assert await backend.list_waiting_permissions(bob) == []
    assert await backend.list_waiting_permissions(None) == [waiting]
    await backend.answer_permission(alice, asked.permission_id, PermissionAnswer.ONCE)
    assert await backend.list_waiting_permissions(None) == []


async def test_watching_waiting_permissions_sees_new_requests(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The server-wide subscription yields the current list, then each new request."""
    reply = await claimed(backend, alice, chat)
    async with aclosing(backend.watch_waiting_permissions(None)) as updates:  # type: ignore[type-var]
        assert await anext(updates) == []
        asked = await backend.record_permission(
            chat.token, reply.message_id, PermissionAsk("p1", "bash", "ls")
        )
        with anyio.fail_after(10):
            [waiting] = await anext(updates)
        assert waiting.request == asked
        await backend.answer_permission(alice, asked.permission_id, PermissionAnswer.REJECT)
        with anyio.fail_after(10):
            assert await anext(updates) == []


async def test_open_turns_list_unfinished_messages_with_their_machine(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Queued and streaming messages are listed with the machine's status; finished ones not."""
    assert await backend.list_open_turns() == []
    asked = await ask(backend, alice, chat)
    [queued] = await backend.list_open_turns()
    assert (queued.user_id, queued.message, queued.machine_online) == (
        alice,
        OpenMessage.of(asked),
        True,
    )
    assert (queued.machine_name, queued.worker_label) == ("laptop", "repo")
    reply = await backend.claim_message(chat.token, asked.message_id)
    open_ids = [t.message.message_id for t in await backend.list_open_turns()]
    assert sorted(open_ids) == sorted([asked.message_id, reply.message_id])
    await backend.go_offline(chat.token)
    turns = await backend.list_open_turns()
    assert all(not t.machine_online for t in turns)
    later = await ask(backend, alice, chat)
    assert later.message_id in [t.message.message_id for t in await backend.list_open_turns()]


async def test_open_turns_never_read_the_text_of_long_queued_messages(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """200 queued messages of 100,000 characters (20 MB) are listed; finished or cancelled not."""
    asked = [
        await ask(backend, alice, chat, chr(ord("a") + n % 26) * MAX_MESSAGE_LENGTH)
        for n in range(200)
    ]
    turns = await backend.list_open_turns()
    assert [t.message for t in turns] == [OpenMessage.of(m) for m in asked]
    reply = await backend.claim_message(chat.token, asked[0].message_id)
    await backend.complete_message(chat.token, reply.message_id, "done")
    await backend.cancel_message(alice, asked[1].message_id)
    assert [t.message.message_id for t in await backend.list_open_turns()] == [
        m.message_id for m in asked[2:]
    ]


async def test_watching_open_turns_sees_a_reply_finish(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The server-wide subscription yields again when a reply ends."""
    reply = await claimed(backend, alice, chat)
    async with aclosing(backend.watch_open_turns()) as updates:  # type: ignore[type-var]
        turns = await anext(updates)
        assert reply.message_id in [t.message.message_id for t in turns]
        await backend.complete_message(chat.token, reply.message_id, "done")
        with anyio.fail_after(10):
            assert await anext(updates) == []

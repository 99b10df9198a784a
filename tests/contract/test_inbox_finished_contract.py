"""The backend contract for the inbox's finished replies and the user's "last looked" mark."""

from __future__ import annotations

from contextlib import aclosing
from datetime import UTC, datetime

import anyio
import pytest

from orchestrator.domain.chat import ChatMessage, MessageStatus
from orchestrator.domain.errors import NotFound
from orchestrator.domain.ids import UserId
from orchestrator.domain.notifications import short_line
from orchestrator.domain.ports import Backend
from tests.contract.conftest import Chat, MachineFactory, claimed

pytestmark = pytest.mark.anyio

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


async def completed(
    backend: Backend, user: UserId, chat: Chat, question: str, answer: str
) -> ChatMessage:
    """Send ``question``, let the machine claim it and complete the reply with ``answer``."""
    reply = await claimed(backend, user, chat, question)
    return await backend.complete_message(chat.token, reply.message_id, answer)


async def test_a_finished_reply_is_listed_until_the_user_looked(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """A completed reply is listed with where it ran and a preview; marking seen hides it."""
    assert await backend.list_finished_replies(alice, 50) == []
    text = "All  done.\n\tSecond liné " * 20
    reply = await completed(backend, alice, chat, "hi", text)
    [done] = await backend.list_finished_replies(alice, 50)
    assert (done.user_id, done.message_id, done.chat_session_id, done.status) == (
        alice,
        reply.message_id,
        chat.session.chat_session_id,
        MessageStatus.COMPLETED,
    )
    assert (done.machine_id, done.machine_name) == (chat.machine.machine_id, "laptop")
    assert (done.worker_id, done.worker_label) == (chat.worker.worker_id, "repo")
    assert done.preview == short_line(text)  # one line of 80 characters, the same everywhere
    assert done.preview.startswith("All done. Second liné All done.")
    assert len(done.preview) == 80
    assert await backend.list_finished_replies(bob, 50) == []

    await backend.mark_inbox_seen(alice, done.finished_at)
    assert await backend.list_finished_replies(alice, 50) == []
    later = await completed(backend, alice, chat, "again", "Later.")
    assert [r.message_id for r in await backend.list_finished_replies(alice, 50)] == [
        later.message_id
    ]


async def test_failed_and_interrupted_replies_are_listed_stopped_ones_not(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A failure shows its reason; a reply the user's machine lost shows; an abort does not."""
    failed = await claimed(backend, alice, chat, "one")
    await backend.end_reply(chat.token, failed.message_id, MessageStatus.FAILED, "Model error")
    stopped = await claimed(backend, alice, chat, "two")
    await backend.end_reply(chat.token, stopped.message_id, MessageStatus.ABORTED, "Stopped")
    lost = await claimed(backend, alice, chat, "three")
    await backend.append_chunk(chat.token, lost.message_id, "Half an ans")
    await backend.end_reply(chat.token, lost.message_id, MessageStatus.INTERRUPTED, "Gone")
    listed = await backend.list_finished_replies(alice, 50)
    assert [(r.message_id, r.status, r.preview) for r in listed] == [
        (lost.message_id, MessageStatus.INTERRUPTED, "Half an ans"),
        (failed.message_id, MessageStatus.FAILED, "Model error"),
    ]


async def test_the_list_is_newest_first_and_bounded(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """At most ``limit`` replies are listed, the newest first."""
    replies = []
    for n in range(3):
        reply = await completed(backend, alice, chat, f"q{n}", f"a{n}")
        replies.append(reply.message_id)
    listed = await backend.list_finished_replies(alice, 2)
    assert [r.message_id for r in listed] == [replies[2], replies[1]]
    assert [r.preview for r in listed] == ["a2", "a1"]


async def test_the_mark_moves_forward_only_and_never_past_now(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An older mark changes nothing; a mark in the future hides nothing that ends later."""
    await completed(backend, alice, chat, "one", "first")
    await completed(backend, alice, chat, "two", "second")
    newest, oldest = await backend.list_finished_replies(alice, 50)
    await backend.mark_inbox_seen(alice, newest.finished_at)
    await backend.mark_inbox_seen(alice, oldest.finished_at)
    assert await backend.list_finished_replies(alice, 50) == []

    await backend.mark_inbox_seen(alice, FAR_FUTURE)
    third = await completed(backend, alice, chat, "three", "third")
    assert [r.message_id for r in await backend.list_finished_replies(alice, 50)] == [
        third.message_id
    ]


async def test_another_users_replies_and_mark_are_their_own(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Bob's finished reply is listed for bob only; alice's mark does not hide it."""
    machine, token = await new_machine("desk", user=bob, online=True)
    worker = await backend.add_worker(bob, machine.machine_id, "bobs", None)
    worker = await backend.update_worker_models(token, worker.worker_id, ("fake/small",))
    session = await backend.start_session(bob, worker.worker_id, "fake/small")
    asked = await backend.send_message(bob, session.chat_session_id, "hi")
    reply = await backend.claim_message(token, asked.message_id)
    await backend.complete_message(token, reply.message_id, "for bob")
    await backend.mark_inbox_seen(alice, FAR_FUTURE)
    assert await backend.list_finished_replies(alice, 50) == []
    [bobs] = await backend.list_finished_replies(bob, 50)
    assert (bobs.user_id, bobs.machine_name, bobs.preview) == (bob, "desk", "for bob")


async def test_marking_an_unknown_user_is_not_found(backend: Backend) -> None:
    """A mark for an ID that is no account is NotFound."""
    with pytest.raises(NotFound):
        await backend.mark_inbox_seen(UserId("usr_nobody"), FAR_FUTURE)


async def test_watching_finished_replies_sees_a_reply_end_and_the_mark(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The subscription yields the list now, again when a reply ends, and after a mark."""
    reply = await claimed(backend, alice, chat, "hi")
    async with aclosing(backend.watch_finished_replies(alice, 50)) as updates:  # type: ignore[type-var]
        assert await anext(updates) == []
        await backend.complete_message(chat.token, reply.message_id, "done")
        with anyio.fail_after(10):
            [done] = await anext(updates)
        assert done.message_id == reply.message_id
        await backend.mark_inbox_seen(alice, done.finished_at)
        with anyio.fail_after(10):
            assert await anext(updates) == []

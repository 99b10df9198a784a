"""The backend contract for chat as its owner sees it: sessions, messages, ownership."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.chat import (
    MAX_MESSAGE_LENGTH,
    ChatSessionStatus,
    MessageRole,
    MessageStatus,
    PermissionAnswer,
    SessionUpdate,
)
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from orchestrator.domain.ids import ChatSessionId, PermissionId, UserId, WorkerId
from orchestrator.domain.ports import Backend
from orchestrator.domain.replies import PermissionAsk
from tests.contract.conftest import MODELS, Chat, MachineFactory, pending_worker

pytestmark = pytest.mark.anyio

ACTIVE, IDLE, TERMINATED = (
    ChatSessionStatus.ACTIVE,
    ChatSessionStatus.IDLE,
    ChatSessionStatus.TERMINATED,
)


async def test_start_session_is_active_on_a_model_of_the_worker(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A new session is active, on the chosen model, with no agent session or title yet."""
    session = await backend.start_session(alice, chat.worker.worker_id, MODELS[1])
    assert (session.status, session.model) == (ACTIVE, MODELS[1])
    assert (session.worker_id, session.user_id) == (chat.worker.worker_id, alice)
    assert session.last_activity == session.created_at
    assert (session.agent_session_id, session.title) == (None, None)
    assert await backend.get_session(alice, session.chat_session_id) == session
    assert await backend.list_messages(alice, session.chat_session_id) == []


async def test_start_session_refuses_a_model_the_worker_does_not_offer(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An unknown model is refused with the list to pick from, and nothing is created."""
    with pytest.raises(
        InvalidInput, match=r"^The worker does not offer model gpt-9\. Pick one of: fake/small, "
    ):
        await backend.start_session(alice, chat.worker.worker_id, "gpt-9")
    assert await backend.list_sessions(alice, chat.worker.worker_id) == [chat.session]


async def test_start_session_before_models_are_known(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A worker whose machine has not reported models yet cannot start a session."""
    machine, _ = await new_machine()
    worker = await backend.add_worker(alice, machine.machine_id, "a", None)
    with pytest.raises(InvalidInput, match=r"not known yet because its machine has not reported"):
        await backend.start_session(alice, worker.worker_id, "fake/small")
    assert await backend.list_sessions(alice, worker.worker_id) == []


async def test_start_session_on_a_pending_worker_is_a_conflict(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> None:
    """A worker waiting for approval cannot host a session."""
    _, token, worker = await pending_worker(backend, alice, new_machine, online=True)
    await backend.update_worker_models(token, worker.worker_id, MODELS)
    with pytest.raises(Conflict, match=r"waiting for approval\. Approve it"):
        await backend.start_session(alice, worker.worker_id, MODELS[0])
    assert await backend.list_sessions(alice, worker.worker_id) == []


async def test_start_session_on_someone_elses_worker(
    backend: Backend, bob: UserId, chat: Chat
) -> None:
    """Another user's worker, or no worker at all, is NotFound."""
    for worker_id in (chat.worker.worker_id, WorkerId("wrk_missing")):
        with pytest.raises(NotFound, match=r"^No such worker\.$"):
            await backend.start_session(bob, worker_id, MODELS[0])


async def test_list_sessions_open_first_then_newest_activity(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Active and idle sessions come first, terminated last; newest activity first in each."""
    worker_id = chat.worker.worker_id
    second = await backend.start_session(alice, worker_id, MODELS[0])
    third = await backend.start_session(alice, worker_id, MODELS[0])
    ended = await backend.end_session(alice, second.chat_session_id)
    await backend.send_message(alice, chat.session.chat_session_id, "hello")
    first = await backend.get_session(alice, chat.session.chat_session_id)
    assert await backend.list_sessions(alice, worker_id) == [first, third, ended]
    restored = await backend.restore_session(alice, second.chat_session_id)
    assert await backend.list_sessions(alice, worker_id) == [restored, first, third]


async def test_end_and_restore_session(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Ending terminates (twice is harmless); restoring makes it idle (an open one is unchanged)."""
    session_id = chat.session.chat_session_id
    assert await backend.restore_session(alice, session_id) == chat.session
    ended = await backend.end_session(alice, session_id)
    assert ended.status is TERMINATED
    assert ended.last_activity > chat.session.last_activity
    assert await backend.end_session(alice, session_id) == ended
    restored = await backend.restore_session(alice, session_id)
    assert restored.status is IDLE
    assert await backend.get_session(alice, session_id) == restored


async def test_send_message_queues_a_pending_user_message(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A message is stored pending and marks the session's activity, machine online or not."""
    await backend.go_offline(chat.token)
    message = await backend.send_message(alice, chat.session.chat_session_id, "  hi  ")
    assert (message.role, message.status, message.content) == (
        MessageRole.USER,
        MessageStatus.PENDING,
        "  hi  ",
    )
    assert (message.reply_to, message.error, message.abort_requested) == (None, None, False)
    assert not message.completed
    session = await backend.get_session(alice, chat.session.chat_session_id)
    assert session.last_activity == message.timestamp
    second = await backend.send_message(alice, chat.session.chat_session_id, "more")
    assert await backend.list_messages(alice, chat.session.chat_session_id) == [message, second]


async def test_send_message_wakes_an_idle_session(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A message to an idle (or restored) session makes it active again."""
    session_id = chat.session.chat_session_id
    await backend.update_session(chat.token, session_id, SessionUpdate(status=IDLE))
    await backend.send_message(alice, session_id, "wake up")
    assert (await backend.get_session(alice, session_id)).status is ACTIVE
    await backend.end_session(alice, session_id)
    await backend.restore_session(alice, session_id)
    await backend.send_message(alice, session_id, "back")
    assert (await backend.get_session(alice, session_id)).status is ACTIVE


@pytest.mark.parametrize(
    ("content", "error", "text"),
    [
        ("", InvalidInput, r"^A message must not be empty\.$"),
        (" \n\t ", InvalidInput, r"^A message must not be empty\.$"),
        ("x" * (MAX_MESSAGE_LENGTH + 1), PayloadTooLarge, r"at most 100000 characters"),
    ],
)
async def test_send_message_refuses_empty_or_oversized(
    backend: Backend,
    alice: UserId,
    chat: Chat,
    content: str,
    error: type[Exception],
    text: str,
) -> None:
    """A blank or oversized message is refused and nothing is stored."""
    with pytest.raises(error, match=text):
        await backend.send_message(alice, chat.session.chat_session_id, content)
    assert await backend.list_messages(alice, chat.session.chat_session_id) == []
    assert await backend.get_session(alice, chat.session.chat_session_id) == chat.session


async def test_send_message_at_the_size_limit_is_accepted(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A message of exactly the maximum length is accepted."""
    content = "x" * MAX_MESSAGE_LENGTH
    message = await backend.send_message(alice, chat.session.chat_session_id, content)
    assert message.content == content


async def test_send_message_to_a_terminated_session(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A terminated session refuses messages until it is restored."""
    await backend.end_session(alice, chat.session.chat_session_id)
    with pytest.raises(Conflict, match=r"^This session has ended\. Restore it to continue\.$"):
        await backend.send_message(alice, chat.session.chat_session_id, "hello?")
    assert await backend.list_messages(alice, chat.session.chat_session_id) == []


async def test_request_abort_with_nothing_streaming(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Asking to stop when no reply is streaming returns None and changes nothing."""
    message = await backend.send_message(alice, chat.session.chat_session_id, "hi")
    assert await backend.request_abort(alice, chat.session.chat_session_id) is None
    assert await backend.list_messages(alice, chat.session.chat_session_id) == [message]


async def test_someone_elses_session_is_not_found_everywhere(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """Every owner-side call on another user's (or no) session raises NotFound."""
    message = await backend.send_message(alice, chat.session.chat_session_id, "hi")
    reply = await backend.claim_message(chat.token, message.message_id)
    request = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("r1", "bash", "ls")
    )
    for session_id in (chat.session.chat_session_id, ChatSessionId("chs_missing")):
        for call in (
            backend.get_session(bob, session_id),
            backend.end_session(bob, session_id),
            backend.restore_session(bob, session_id),
            backend.send_message(bob, session_id, "hijack"),
            backend.list_messages(bob, session_id),
            backend.request_abort(bob, session_id),
            backend.list_permissions(bob, session_id),
        ):
            with pytest.raises(NotFound, match=r"^No such chat session\.$"):
                await call
    for permission_id in (request.permission_id, PermissionId("prm_missing")):
        with pytest.raises(NotFound, match=r"^No such permission request\.$"):
            await backend.answer_permission(bob, permission_id, PermissionAnswer.ALWAYS)
    with pytest.raises(NotFound, match=r"^No such worker\.$"):
        await backend.list_sessions(bob, chat.worker.worker_id)
    # Nothing of alice's changed.
    session = await backend.get_session(alice, chat.session.chat_session_id)
    assert session.status is ACTIVE
    [asked, streaming] = await backend.list_messages(alice, chat.session.chat_session_id)
    assert (asked.content, streaming.abort_requested) == ("hi", False)
    assert [p.status for p in await backend.list_permissions(alice, session.chat_session_id)] == [
        "pending"
    ]


async def test_removing_a_worker_deletes_its_chat(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Removing a worker deletes its sessions, messages, chunks and permission requests."""
    other = await backend.add_worker(alice, chat.machine.machine_id, "other", None)
    await backend.update_worker_models(chat.token, other.worker_id, MODELS)
    kept = await backend.start_session(alice, other.worker_id, MODELS[0])
    message = await backend.send_message(alice, chat.session.chat_session_id, "hi")
    reply = await backend.claim_message(chat.token, message.message_id)
    await backend.append_chunk(chat.token, reply.message_id, "partial")
    request = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("r1", "bash", "ls")
    )
    await backend.remove_worker(alice, chat.worker.worker_id)
    with pytest.raises(NotFound, match=r"^No such chat session\.$"):
        await backend.get_session(alice, chat.session.chat_session_id)
    with pytest.raises(NotFound):
        await backend.list_session_messages(chat.token, chat.session.chat_session_id)
    with pytest.raises(NotFound):
        await backend.append_chunk(chat.token, reply.message_id, "more")
    with pytest.raises(NotFound):
        await backend.answer_permission(alice, request.permission_id, PermissionAnswer.ONCE)
    assert await backend.get_session(alice, kept.chat_session_id) == kept
    assert await backend.list_sessions(alice, other.worker_id) == [kept]


async def test_deleting_a_machine_deletes_its_chat(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Deleting a machine deletes the sessions of all its workers."""
    message = await backend.send_message(alice, chat.session.chat_session_id, "hi")
    await backend.delete_machine(alice, chat.machine.machine_id)
    with pytest.raises(NotFound):
        await backend.get_session(alice, chat.session.chat_session_id)
    # IDs are never reused, but a new machine must not see leftovers either.
    machine, token = await new_machine("second", online=True)
    worker = await backend.add_worker(alice, machine.machine_id, "repo", None)
    await backend.update_worker_models(token, worker.worker_id, MODELS)
    with pytest.raises(NotFound):
        await backend.claim_message(token, message.message_id)
    assert await backend.list_sessions(alice, worker.worker_id) == []


async def test_session_timestamps_are_utc_milliseconds(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Chat timestamps come back timezone-aware with millisecond precision."""
    message = await backend.send_message(alice, chat.session.chat_session_id, "hi")
    for when in (chat.session.created_at, message.timestamp):
        assert when.utcoffset() == timedelta(0)
        assert when.microsecond % 1000 == 0


async def test_the_owner_renames_a_session_within_bounds(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """A title is trimmed and kept; blank, 10,000 characters or another's session change nothing."""
    session_id = chat.session.chat_session_id
    renamed = await backend.rename_session(alice, session_id, "  Fix the <b>login</b>  ")
    assert renamed.title == "Fix the <b>login</b>"
    assert (await backend.get_session(alice, session_id)).title == "Fix the <b>login</b>"
    with pytest.raises(PayloadTooLarge, match=r"^A title must be at most 200 characters\.$"):
        await backend.rename_session(alice, session_id, "x" * 10_000)
    with pytest.raises(InvalidInput, match=r"^A title must not be empty\.$"):
        await backend.rename_session(alice, session_id, "   ")
    with pytest.raises(NotFound):
        await backend.rename_session(bob, session_id, "mine now")
    assert (await backend.get_session(alice, session_id)).title == "Fix the <b>login</b>"
    # The agent's title, coming later, does not replace the owner's.
    await backend.update_session(chat.token, session_id, SessionUpdate(title="Agent's idea"))
    assert (await backend.get_session(alice, session_id)).title == "Fix the <b>login</b>"

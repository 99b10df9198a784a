"""The backend contract for permission requests: asked by the agent, answered by the owner."""

from __future__ import annotations

import pytest

from orchestrator.domain.chat import MessageStatus, PermissionAnswer, PermissionStatus
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import PermissionId, UserId
from orchestrator.domain.ports import Backend
from tests.contract.conftest import Chat, ask, work_now

pytestmark = pytest.mark.anyio


async def test_permission_request_round_trip(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Pending → answered by the owner → resolved by the machine, each step once."""
    session_id = chat.session.chat_session_id
    reply = await backend.claim_message(chat.token, (await ask(backend, alice, chat)).message_id)
    request = await backend.record_permission(
        chat.token, reply.message_id, "per_1", "bash", "rm -rf build"
    )
    assert (request.status, request.answer, request.message_id) == (
        PermissionStatus.PENDING,
        None,
        reply.message_id,
    )
    assert (request.agent_request_id, request.tool, request.chat_session_id) == (
        "per_1",
        "bash",
        session_id,
    )
    assert await backend.list_permissions(alice, session_id) == [request]
    with pytest.raises(Conflict, match=r"^This permission request has no answer to pass on\.$"):
        await backend.resolve_permission(chat.token, request.permission_id)
    answered = await backend.answer_permission(alice, request.permission_id, PermissionAnswer.ONCE)
    assert (answered.status, answered.answer) == (PermissionStatus.ANSWERED, "once")
    assert await backend.list_permissions(alice, session_id) == []
    assert await backend.list_permissions(alice, session_id, include_answered=True) == [answered]
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == (answered,)
    with pytest.raises(Conflict, match=r"^This permission request is no longer waiting for an"):
        await backend.answer_permission(alice, request.permission_id, PermissionAnswer.REJECT)
    resolved = await backend.resolve_permission(chat.token, request.permission_id)
    assert (resolved.status, resolved.answer) == (PermissionStatus.RESOLVED, "once")
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == ()
    with pytest.raises(Conflict):
        await backend.resolve_permission(chat.token, request.permission_id)


async def test_permission_requests_expire_when_the_reply_ends(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Pending and answered requests of a reply expire when it ends; answers come too late."""
    reply = await backend.claim_message(chat.token, (await ask(backend, alice, chat)).message_id)
    waiting = await backend.record_permission(chat.token, reply.message_id, "p1", "bash", "ls")
    answered = await backend.record_permission(chat.token, reply.message_id, "p2", "edit", "a.py")
    await backend.answer_permission(alice, answered.permission_id, PermissionAnswer.ALWAYS)
    await backend.end_reply(chat.token, reply.message_id, MessageStatus.INTERRUPTED, "Restarted")
    with pytest.raises(Conflict, match=r"no longer waiting for an answer"):
        await backend.answer_permission(alice, waiting.permission_id, PermissionAnswer.ONCE)
    with pytest.raises(Conflict, match=r"no answer to pass on"):
        await backend.resolve_permission(chat.token, answered.permission_id)
    assert await backend.list_permissions(alice, chat.session.chat_session_id) == []
    [work] = await work_now(backend, chat.token)
    assert work.answered_permissions == ()


async def test_record_permission_refusals(backend: Backend, alice: UserId, chat: Chat) -> None:
    """Requests need a streaming reply and non-blank fields; unknown IDs are NotFound."""
    message = await ask(backend, alice, chat)
    reply = await backend.claim_message(chat.token, message.message_id)
    with pytest.raises(Conflict, match=r"^That message is not a reply\.$"):
        await backend.record_permission(chat.token, message.message_id, "p", "bash", "ls")
    with pytest.raises(InvalidInput, match=r"^The tool name must not be empty\.$"):
        await backend.record_permission(chat.token, reply.message_id, "p", " ", "ls")
    await backend.complete_message(chat.token, reply.message_id, "done")
    with pytest.raises(Conflict, match=r"^This reply has already ended\.$"):
        await backend.record_permission(chat.token, reply.message_id, "p", "bash", "ls")
    with pytest.raises(NotFound, match=r"^No such permission request\.$"):
        await backend.resolve_permission(chat.token, PermissionId("prm_missing"))
    assert await backend.list_permissions(alice, chat.session.chat_session_id) == []

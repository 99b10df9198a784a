"""The backend contract for agents (modes), slash commands and the queue of unsent messages."""

from __future__ import annotations

import pytest

from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.chat import MAX_MESSAGE_LENGTH, MessageStatus
from orchestrator.domain.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from orchestrator.domain.ids import UserId
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MODELS, Chat

pytestmark = pytest.mark.anyio

AGENTS = ["build", "plan"]
COMMANDS = ["review", "hello"]
UNKNOWN = r"^The worker does not offer agent wizard\. Pick one of: build, plan\.$"
NOT_QUEUED = r"^This message is no longer queued: the agent has already received it\.$"


async def _with_agents(backend: Backend, chat: Chat) -> None:
    worker = await backend.update_worker_agents(
        chat.token, chat.worker.worker_id, AgentCatalog(tuple(AGENTS), tuple(COMMANDS))
    )
    assert (worker.agents, worker.commands) == (tuple(AGENTS), tuple(COMMANDS))


async def test_a_worker_reports_its_agents_and_commands(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The machine's list of agents and slash commands is what the owner sees on the worker."""
    assert (chat.worker.agents, chat.worker.commands) == ((), ())
    await _with_agents(backend, chat)
    [worker] = await backend.list_workers(alice, chat.machine.machine_id)
    assert (worker.agents, worker.commands) == (tuple(AGENTS), tuple(COMMANDS))
    assert worker.models == tuple(MODELS)


async def test_a_session_and_a_message_keep_the_chosen_agent(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """A session's default agent and a message's own agent are stored; none means the default."""
    await _with_agents(backend, chat)
    session = await backend.start_session(alice, chat.worker.worker_id, MODELS[0], "plan")
    assert (await backend.get_session(alice, session.chat_session_id)).agent == "plan"
    plain = await backend.send_message(alice, session.chat_session_id, "hello")
    built = await backend.send_message(alice, session.chat_session_id, "go", "build")
    assert (plain.agent, built.agent) == (None, "build")
    stored = await backend.list_messages(alice, session.chat_session_id)
    assert [m.agent for m in stored] == [None, "build"]
    assert chat.session.agent is None


async def test_an_unknown_agent_is_refused_and_nothing_is_stored(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """An agent the worker does not offer gets one sentence; no session or message is made."""
    await _with_agents(backend, chat)
    with pytest.raises(InvalidInput, match=UNKNOWN):
        await backend.start_session(alice, chat.worker.worker_id, MODELS[0], "wizard")
    with pytest.raises(InvalidInput, match=UNKNOWN):
        await backend.send_message(alice, chat.session.chat_session_id, "hi", "wizard")
    assert await backend.list_sessions(alice, chat.worker.worker_id) == [chat.session]
    assert await backend.list_messages(alice, chat.session.chat_session_id) == []


async def test_a_queued_message_is_edited_or_cancelled_before_it_is_claimed(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """The sender changes or drops a pending message; the machine then sees only what is left."""
    session_id = chat.session.chat_session_id
    first = await backend.send_message(alice, session_id, "first")
    second = await backend.send_message(alice, session_id, "second")
    edited = await backend.edit_message(alice, first.message_id, "first, better")
    assert (edited.content, edited.status) == ("first, better", MessageStatus.PENDING)
    await backend.cancel_message(alice, second.message_id)
    stored = await backend.list_messages(alice, session_id)
    assert [(m.message_id, m.content) for m in stored] == [(first.message_id, "first, better")]
    reply = await backend.claim_message(chat.token, first.message_id)
    assert reply.reply_to == first.message_id


async def test_a_claimed_or_anothers_message_cannot_be_edited_or_cancelled(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat
) -> None:
    """Once claimed, or for another user, or too long: one sentence and nothing changes."""
    session_id = chat.session.chat_session_id
    sent = await backend.send_message(alice, session_id, "run it")
    with pytest.raises(NotFound, match=r"^No such message\.$"):
        await backend.edit_message(bob, sent.message_id, "mine now")
    with pytest.raises(NotFound, match=r"^No such message\.$"):
        await backend.cancel_message(bob, sent.message_id)
    with pytest.raises(PayloadTooLarge):
        await backend.edit_message(alice, sent.message_id, "x" * (MAX_MESSAGE_LENGTH + 1))
    with pytest.raises(InvalidInput, match=r"^A message must not be empty\.$"):
        await backend.edit_message(alice, sent.message_id, "  ")
    reply = await backend.claim_message(chat.token, sent.message_id)
    with pytest.raises(Conflict, match=NOT_QUEUED):
        await backend.edit_message(alice, sent.message_id, "too late")
    with pytest.raises(Conflict, match=NOT_QUEUED):
        await backend.cancel_message(alice, sent.message_id)
    with pytest.raises(Conflict, match=NOT_QUEUED):
        await backend.cancel_message(alice, reply.message_id)
    stored = await backend.list_messages(alice, session_id)
    assert [(m.content, m.status) for m in stored] == [
        ("run it", MessageStatus.PROCESSING),
        ("", MessageStatus.STREAMING),
    ]

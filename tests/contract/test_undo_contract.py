"""The backend contract for undo and redo of turns: the owner asks, the machine carries out."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.domain.chat import ChatMessage, MessageStatus
from orchestrator.domain.diffs import TURN_DIFF_PART, FileDiff, TurnDiffPart
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import MessageId, UserId
from orchestrator.domain.ports import Backend
from orchestrator.domain.undo import BUSY, NO_REPLY, NOT_UNDOABLE, NOTHING_UNDONE, REDO_GONE
from tests.contract.conftest import Chat, ask, claimed, work_now

pytestmark = pytest.mark.anyio

DIFF = TurnDiffPart("msg_agent_1", (FileDiff("a.txt", "modified", 1, 1, "-a\n+b\n", 6),))


async def _finished_reply(
    backend: Backend, alice: UserId, chat: Chat, diff: bool = True
) -> ChatMessage:
    reply = await claimed(backend, alice, chat)
    if diff:
        await backend.save_part(chat.token, reply.message_id, TURN_DIFF_PART, DIFF)
    return await backend.complete_message(chat.token, reply.message_id, "done")


@pytest.fixture
async def finished(backend: Backend, alice: UserId, chat: Chat) -> ChatMessage:
    """A finished reply in the ``chat`` session whose agent turn changed a file (``DIFF``)."""
    return await _finished_reply(backend, alice, chat)


async def test_undo_then_redo_reach_the_machine_and_come_back_done(
    backend: Backend, alice: UserId, chat: Chat, finished: ChatMessage
) -> None:
    """Undo records the reply and the agent's turn; the machine sees it pending, reports it done."""
    session_id = chat.session.chat_session_id
    undone = await backend.undo_turn(alice, session_id, finished.message_id)
    assert (undone.undone_from, undone.undo_agent_id) == (finished.message_id, "msg_agent_1")
    assert undone.undo_pending
    [work] = await work_now(backend, chat.token)
    assert work.session.undo_pending
    assert work.session.undo_agent_id == "msg_agent_1"
    done = await backend.report_undo(chat.token, session_id, undone.undo_requests, None)
    assert (done.undo_pending, done.undone_from) == (False, finished.message_id)

    redone = await backend.redo_turns(alice, session_id)
    assert (redone.undone_from, redone.undo_agent_id, redone.undo_pending) == (None, None, True)
    stale = await backend.report_undo(chat.token, session_id, done.undo_requests, None)
    assert stale.undo_pending  # an old report changes nothing
    failed = await backend.report_undo(
        chat.token, session_id, redone.undo_requests, "opencode said no"
    )
    assert (failed.undo_pending, failed.undo_error) == (False, "opencode said no")
    with pytest.raises(Conflict, match=NOTHING_UNDONE):
        await backend.redo_turns(alice, session_id)


async def test_redo_is_refused_once_a_message_followed_the_undo(
    backend: Backend, alice: UserId, chat: Chat, finished: ChatMessage
) -> None:
    """The agent drops undone turns on the next prompt: redo after a new message is a Conflict."""
    session_id = chat.session.chat_session_id
    undone = await backend.undo_turn(alice, session_id, finished.message_id)
    await anyio.sleep(0.01)  # the message comes later than the undo, also by a real clock
    await ask(backend, alice, chat, "try again")
    with pytest.raises(Conflict, match=REDO_GONE):
        await backend.redo_turns(alice, session_id)
    session = await backend.get_session(alice, session_id)
    assert (session.undone_from, session.undone_at) == (finished.message_id, undone.undone_at)
    assert undone.undone_at is not None


async def test_undo_refuses_bad_requests_and_changes_nothing(
    backend: Backend, alice: UserId, bob: UserId, chat: Chat, finished: ChatMessage
) -> None:
    """Unknown message, a user message, another user's session, a reply with no turn, busy."""
    plain = await _finished_reply(backend, alice, chat, diff=False)
    session_id = chat.session.chat_session_id
    with pytest.raises(NotFound, match=NO_REPLY):
        await backend.undo_turn(alice, session_id, MessageId("msg_unknown"))
    assert finished.reply_to is not None
    with pytest.raises(NotFound, match=NO_REPLY):
        await backend.undo_turn(alice, session_id, finished.reply_to)
    with pytest.raises(NotFound):
        await backend.undo_turn(bob, session_id, finished.message_id)
    with pytest.raises(NotFound):
        await backend.redo_turns(bob, session_id)
    with pytest.raises(Conflict, match=NOT_UNDOABLE):
        await backend.undo_turn(alice, session_id, plain.message_id)
    streaming = await claimed(backend, alice, chat)
    with pytest.raises(Conflict, match=BUSY):
        await backend.undo_turn(alice, session_id, finished.message_id)
    with pytest.raises(Conflict, match=BUSY):
        await backend.undo_turn(alice, session_id, streaming.message_id)
    await backend.end_reply(chat.token, streaming.message_id, MessageStatus.FAILED, "x")
    session = await backend.get_session(alice, session_id)
    assert (session.undone_from, session.undo_requests) == (None, 0)


async def test_a_turn_of_an_ended_session_cannot_be_undone(
    backend: Backend, alice: UserId, chat: Chat, finished: ChatMessage
) -> None:
    """Undo and redo in a terminated session are refused with the session-ended sentence."""
    session_id = chat.session.chat_session_id
    await backend.end_session(alice, session_id)
    with pytest.raises(Conflict, match="This session has ended"):
        await backend.undo_turn(alice, session_id, finished.message_id)
    with pytest.raises(Conflict, match="This session has ended"):
        await backend.redo_turns(alice, session_id)
    session = await backend.get_session(alice, session_id)
    assert (session.undone_from, session.undo_requests) == (None, 0)

"""A machine's live events, taken in order per session and side by side across sessions.

One WebSocket carries every session of a machine. The first event of a reply
reads the reply from the backend; while that read waits (a busy database), the
other sessions' deltas must still reach their readers, and the waiting
session's own events must follow in order once it is done. A hand-written
wrapper of the real SQLite backend holds one session's reply read on a gate.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import attrs
import pytest

from orchestrator.application.live import LiveIntake, LiveRelay
from orchestrator.domain.chat import ChatChunk, ChatMessage
from orchestrator.domain.errors import OrchestratorError, TextGap
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.live import LiveText, ReplyState, SequencedEvent
from orchestrator.domain.parts import PartId, StreamEvent, TextKind
from orchestrator.domain.ports import Backend, LiveEventStore
from orchestrator.testing.fakes import FakeClock
from tests.contract.conftest import MODELS, SQLITE_ONLY, Chat, MachineFactory

#: The relay stores into the embedded backend alone (as in the live-store contract).
pytestmark = [pytest.mark.anyio, SQLITE_ONLY]

PART = PartId("prt_text")


@attrs.define
class GatedStore:
    """A live event store whose reply reads for ``held`` wait until ``gate`` is set."""

    store: LiveEventStore
    held: ChatSessionId | None = None
    gate: anyio.Event = attrs.field(factory=anyio.Event)
    reads: list[ChatSessionId] = attrs.field(factory=list)

    async def reply_state(
        self, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> ReplyState:
        self.reads.append(session_id)
        if session_id == self.held:
            await self.gate.wait()
        return await self.store.reply_state(token, session_id, message_id)

    async def last_sequence(self, session_id: ChatSessionId) -> int:
        return await self.store.last_sequence(session_id)

    async def store_events(self, token: MachineToken, events: Sequence[SequencedEvent]) -> None:
        await self.store.store_events(token, events)


async def _reply(backend: Backend, user: UserId, chat: Chat) -> ChatMessage:
    session = await backend.start_session(user, chat.worker.worker_id, MODELS[0])
    asked = await backend.send_message(user, session.chat_session_id, "hi")
    return await backend.claim_message(chat.token, asked.message_id)


def _text(events: list[StreamEvent]) -> str:
    return "".join(e.chunk for e in events if isinstance(e, ChatChunk))


async def test_a_session_waiting_on_its_reply_read_holds_back_no_other_session(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """While one session's reply read waits, another's deltas reach its reader; the
    waiting session's deltas then arrive once each, in the order they were sent."""
    assert isinstance(backend, LiveEventStore)
    slow, fast = await _reply(backend, alice, chat), await _reply(backend, alice, chat)
    store = GatedStore(backend, held=slow.chat_session_id)
    relay = LiveRelay(store, FakeClock(), window=3600)
    slow_reader = (await relay.session(slow.chat_session_id)).attach().subscriber
    fast_reader = (await relay.session(fast.chat_session_id)).attach().subscriber
    refused: list[OrchestratorError] = []

    async def refuse(error: OrchestratorError) -> None:
        refused.append(error)

    def delta(reply: ChatMessage, offset: int, text: str) -> LiveText:
        return LiveText(reply.chat_session_id, reply.message_id, PART, TextKind.TEXT, offset, text)

    async with anyio.create_task_group() as tg:
        intake = LiveIntake(relay, tg)
        await intake.submit(chat.token, delta(slow, 0, "one "), refuse)
        await intake.submit(chat.token, delta(fast, 0, "quick "), refuse)
        await intake.submit(chat.token, delta(slow, 4, "two "), refuse)
        with anyio.fail_after(5):
            await fast_reader.wait()
        assert _text(fast_reader.take()) == "quick "
        assert _text(slow_reader.take()) == ""  # its read still waits
        await intake.submit(chat.token, delta(fast, 6, "again"), refuse)
        assert _text(fast_reader.take()) == "again"  # a reply already read goes at once
        store.gate.set()
        seen: list[StreamEvent] = []
        with anyio.fail_after(5):
            while _text(seen) != "one two ":
                await slow_reader.wait()
                seen += slow_reader.take()
        await intake.submit(chat.token, delta(slow, 20, "gap"), refuse)
        assert [type(e) for e in refused] == [TextGap]
        assert store.reads.count(slow.chat_session_id) == 1
        tg.cancel_scope.cancel()


async def test_a_reply_read_ahead_at_its_claim_takes_its_first_event_without_a_read(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Prepared when claimed, a reply's first delta is taken at once, with no backend read."""
    assert isinstance(backend, LiveEventStore)
    reply = await _reply(backend, alice, chat)
    store = GatedStore(backend)
    relay = LiveRelay(store, FakeClock(), window=3600)
    first = LiveText(reply.chat_session_id, reply.message_id, PART, TextKind.TEXT, 0, "hi")
    assert not relay.ready(chat.token, first)
    await relay.prepare(chat.token, reply)
    assert relay.ready(chat.token, first)
    assert await relay.receive(chat.token, first) is not None
    assert store.reads == [reply.chat_session_id]  # the one read, at the claim


async def test_reading_ahead_another_machines_reply_is_refused_and_keeps_nothing(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """Another machine cannot prepare the reply: refused, and the owner's events still go."""
    assert isinstance(backend, LiveEventStore)
    reply = await _reply(backend, alice, chat)
    _, stranger = await new_machine(online=True)
    relay = LiveRelay(backend, FakeClock(), window=3600)
    first = LiveText(reply.chat_session_id, reply.message_id, PART, TextKind.TEXT, 0, "hi")
    with pytest.raises(OrchestratorError):
        await relay.prepare(stranger, reply)
    assert not relay.ready(stranger, first)
    assert not relay.ready(chat.token, first)
    assert await relay.receive(chat.token, first) is not None

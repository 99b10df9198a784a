"""The live relay through faults: a backend outage, a machine swept offline mid-reply.

The relay stores into real SQLite, in one test through a hand-written wrapper
that refuses writes with :class:`BackendUnavailable` while ``down`` is set (as a
full disk or a busy database does): nothing is acknowledged to the machine until
stored, and everything is stored, in order, once the backend takes writes again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import anyio
import attrs
import pytest

from orchestrator.application import machines
from orchestrator.application.live import LiveRelay
from orchestrator.domain.chat import MessageStatus
from orchestrator.domain.errors import BackendUnavailable, Conflict
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.live import LiveText, ReplyState, SequencedEvent
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.domain.ports import Backend, LiveEventStore
from orchestrator.testing.fakes import FakeClock
from tests.contract.conftest import SQLITE_ONLY, Chat, LiveReply

#: The relay stores into the embedded backend alone (as in the live-store contract).
pytestmark = [pytest.mark.anyio, SQLITE_ONLY]


@attrs.define
class FlakyStore:
    """A live event store that refuses writes and reply reads while ``down``."""

    store: LiveEventStore
    down: bool = False
    refused: int = 0

    async def reply_state(
        self, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> ReplyState:
        if self.down:
            self.refused += 1
            raise BackendUnavailable("The database is busy or cannot be written.")
        return await self.store.reply_state(token, session_id, message_id)

    async def last_sequence(self, session_id: ChatSessionId) -> int:
        return await self.store.last_sequence(session_id)

    async def store_events(self, token: MachineToken, events: Sequence[SequencedEvent]) -> None:
        if self.down:
            self.refused += 1
            raise BackendUnavailable("The database is busy or cannot be written.")
        await self.store.store_events(token, events)


async def test_events_the_backend_cannot_take_are_kept_unacknowledged_until_it_can(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """Writes refused for a while: nothing acknowledged meanwhile, all stored once, in order."""
    store, reply, session_id = live
    flaky = FlakyStore(store)
    relay = LiveRelay(flaky, FakeClock(), window=0.01)
    acked: list[int] = []

    async def ack(numbers: list[int]) -> None:
        acked.extend(numbers)

    words = [f"w{i:03d} " for i in range(1, 61)]
    offset = 0
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        for number, word in enumerate(words[:20], start=1):
            text = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, offset, word)
            await relay.receive(chat.token, text, ack, number)
            offset += len(word)
        with anyio.fail_after(5):
            while len(acked) < 20:
                await anyio.sleep(0.01)
        flaky.down = True
        for number, word in enumerate(words[20:], start=21):
            text = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, offset, word)
            await relay.receive(chat.token, text, ack, number)
            offset += len(word)
        with anyio.fail_after(5):
            while flaky.refused < 3:  # tried, refused, tried again...
                await anyio.sleep(0.01)
        await relay.flush(session_id)  # as when a reply is about to end: still refused
        assert acked == list(range(1, 21))
        flaky.down = False
        with anyio.fail_after(5):
            while len(acked) < 60:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert acked == list(range(1, 61))
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [getattr(p.body, "text", None) for p in parts] == ["".join(words)]


async def test_events_of_a_reply_that_ended_are_refused_and_change_nothing(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """A machine back after its reply was ended (interrupted) cannot add text to it."""
    store, reply, session_id = live
    first = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 0, "kept ")
    await store.store_events(chat.token, [SequencedEvent(first, 1)])
    await backend.end_reply(chat.token, reply.message_id, MessageStatus.INTERRUPTED, "Gone.")
    late = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 5, "late ")
    with pytest.raises(Conflict):
        await store.store_events(chat.token, [SequencedEvent(late, 2)])
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [getattr(p.body, "text", None) for p in parts] == ["kept "]
    assert await store.last_sequence(session_id) == 1


async def test_a_swept_machines_reply_keeps_held_text_and_takes_no_more(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """The sweep stores what the relay holds, ends the reply; later events are refused, unseen."""
    store, reply, session_id = live
    relay = LiveRelay(store, FakeClock(), window=3600)  # stores only when asked
    held = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 0, "held ")
    assert await relay.receive(chat.token, held) is not None
    reader = (await relay.session(session_id)).attach().subscriber
    silent = await backend.authenticate(chat.token)
    assert silent.last_heartbeat is not None
    clock = FakeClock(silent.last_heartbeat + timedelta(minutes=1))
    swept = await machines.mark_stale_machines_offline(
        backend, clock, timedelta(seconds=45), live=relay
    )
    assert swept == [silent.machine_id]
    [_, ended] = await backend.list_messages(alice, session_id)
    assert (ended.status, ended.content) == (MessageStatus.INTERRUPTED, "held ")
    late = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 5, "late ")
    with pytest.raises(Conflict):
        await relay.receive(chat.token, late)
    assert reader.take() == []


async def test_no_machine_is_swept_before_the_server_was_up_for_the_whole_window(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Heartbeats missed while the server was down do not count: the sweep waits a window."""
    silent = await backend.authenticate(chat.token)
    assert silent.last_heartbeat is not None
    clock = FakeClock(silent.last_heartbeat + timedelta(minutes=10))
    started = clock.now()
    window = timedelta(seconds=45)
    assert await machines.mark_stale_machines_offline(backend, clock, window, since=started) == []
    clock.advance(window)
    swept = await machines.mark_stale_machines_offline(backend, clock, window, since=started)
    assert swept == [silent.machine_id]

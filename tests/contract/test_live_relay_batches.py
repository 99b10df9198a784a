"""The live relay's durable batches: a slow stream's text is not stored a few words at a time.

A model writing a few words a second would fill a window with a few dozen characters;
the relay lets such text gather past the window, up to ``gather`` windows, until it
holds ``min_chars`` (``benchmarks/relay.py --rate 20`` measures the writes it saves).
A part (a tool call moving on) is stored at the next window as before; the parts that
only mark where a model call starts and ends ride with the text around them.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import attrs
import pytest

from orchestrator.application.live import LiveRelay
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.live import LivePart, LiveText, ReplyState, SequencedEvent
from orchestrator.domain.parts import (
    PartId,
    StepFinishPart,
    StepStartPart,
    TextKind,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.ports import Backend, LiveEventStore
from orchestrator.testing.fakes import FakeClock
from tests.contract.conftest import SQLITE_ONLY, Chat, LiveReply

#: The relay stores into the embedded backend alone (as in the live-store contract).
pytestmark = [pytest.mark.anyio, SQLITE_ONLY]

WORD = "w00000000 "  # ten characters


async def stored(relay: LiveRelay, writes: int) -> None:
    with anyio.fail_after(5):
        while relay.writes < writes:
            await anyio.sleep(0.01)


async def say(relay: LiveRelay, chat: Chat, live: LiveReply, count: int, offset: int) -> None:
    """``count`` words of the reply's text part from ``offset`` on, one delta each."""
    for n in range(count):
        word = LiveText(
            live.session_id,
            live.reply.message_id,
            PartId("p"),
            TextKind.TEXT,
            offset + n * 10,
            WORD,
        )
        await relay.receive(chat.token, word)


async def test_slow_text_gathers_past_the_window_until_a_batch_is_worth_a_write(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """50 characters wait through twenty windows; the 100th stores them, in one write."""
    store, reply, session_id = live
    relay = LiveRelay(store, FakeClock(), window=0.01, min_chars=100, gather=1000)

    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        await say(relay, chat, live, 5, 0)
        await anyio.sleep(0.2)
        assert relay.writes == 0, "a few words are not worth a write of their own"
        await say(relay, chat, live, 5, 50)
        await stored(relay, 1)
        assert (relay.writes, relay.chars) == (1, 100)
        tg.cancel_scope.cancel()
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [getattr(p.body, "text", None) for p in parts] == [WORD * 10]


async def test_slow_text_waits_at_most_gather_windows(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """A lone word, far from ``min_chars``, is stored after ``gather`` windows."""
    store, reply, session_id = live
    relay = LiveRelay(store, FakeClock(), window=0.01, min_chars=100, gather=5)
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        word = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 0, WORD)
        await relay.receive(chat.token, word)
        await stored(relay, 1)
        tg.cancel_scope.cancel()
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [getattr(p.body, "text", None) for p in parts] == [WORD]


@pytest.mark.parametrize("gathering", [False, True], ids=["with-the-text", "while-text-gathers"])
async def test_a_part_is_stored_at_once_with_the_text_gathered_before_it(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply, gathering: bool
) -> None:
    """Text could gather for 1000 windows (10 s); a tool call's state does not wait for it,
    whether it comes within the text's first window or while the text gathers."""
    store, reply, session_id = live
    relay = LiveRelay(store, FakeClock(), window=0.01, min_chars=100, gather=1000)
    running = ToolPart("bash", "call_1", ToolState(ToolStatus.RUNNING, '{"command": "ls"}'))
    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        word = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 0, WORD)
        await relay.receive(chat.token, word)
        if gathering:
            await anyio.sleep(0.2)  # twenty windows: the word is gathering
            assert relay.writes == 0
        tool = LivePart(session_id, reply.message_id, PartId("t"), running)
        await relay.receive(chat.token, tool)
        await stored(relay, 1)
        tg.cancel_scope.cancel()
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [p.part_id for p in parts] == [PartId("p"), PartId("t")]
    assert parts[1].body == running


async def test_a_step_start_and_finish_gather_with_the_text_around_them(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """A short reply -- step start, a few words, step finish -- is one write, not three:
    the markers of a model call are not worth a write of their own (a tool call is)."""
    store, reply, session_id = live
    relay = LiveRelay(store, FakeClock(), window=0.01, min_chars=100, gather=1000)
    finish = StepFinishPart("stop", 0.01, Tokens(input=10, output=5))

    def part(part_id: str, body: StepStartPart | StepFinishPart) -> LivePart:
        return LivePart(session_id, reply.message_id, PartId(part_id), body)

    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        await relay.receive(chat.token, part("s1", StepStartPart()))
        await anyio.sleep(0.2)  # twenty windows
        assert relay.writes == 0, "a step's start waits for what the step says"
        word = LiveText(session_id, reply.message_id, PartId("p"), TextKind.TEXT, 0, WORD)
        await relay.receive(chat.token, word)
        await relay.receive(chat.token, part("s2", finish))
        await anyio.sleep(0.2)
        assert relay.writes == 0, "a step's finish waits with the text before it"
        await relay.flush(session_id)  # the reply ends: the machine asks for it stored
        assert (relay.writes, relay.chars) == (1, 10)
        tg.cancel_scope.cancel()
    parts = await backend.list_parts(alice, session_id, reply.message_id)
    assert [p.part_id for p in parts] == [PartId("s1"), PartId("p"), PartId("s2")]
    assert parts[2].body == finish


@attrs.define
class _SlowStore:
    """The backend's live store, each write taking ``delay`` seconds."""

    inner: LiveEventStore
    delay: float

    async def reply_state(
        self, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> ReplyState:
        return await self.inner.reply_state(token, session_id, message_id)

    async def last_sequence(self, session_id: ChatSessionId) -> int:
        return await self.inner.last_sequence(session_id)

    async def store_events(self, token: MachineToken, events: Sequence[SequencedEvent]) -> None:
        await anyio.sleep(self.delay)
        await self.inner.store_events(token, events)


async def test_text_arriving_while_a_batch_is_stored_gathers_for_its_own_write(
    backend: Backend, alice: UserId, chat: Chat, live: LiveReply
) -> None:
    """The text that made a write worth it is not counted again for the next one: a few
    words that came while it was being stored gather like any others."""
    store, _, session_id = live
    relay = LiveRelay(_SlowStore(store, 0.1), FakeClock(), window=0.01, min_chars=100, gather=1000)

    async with anyio.create_task_group() as tg:
        await tg.start(relay.run)
        # Worth a write: stored after the first window, for 0.1 s.
        await say(relay, chat, live, 10, 0)
        await anyio.sleep(0.05)
        assert relay.sessions[session_id].store_lock.locked(), "the write is under way"
        await say(relay, chat, live, 2, 100)  # twenty characters while it is
        await stored(relay, 1)
        await anyio.sleep(0.3)  # thirty windows
        assert (relay.writes, relay.chars) == (1, 100), "twenty characters gather"
        await relay.flush(session_id)
        assert (relay.writes, relay.chars) == (2, 120)
        tg.cancel_scope.cancel()

"""The live relay through a backend outage: what the backend cannot take now is kept, not lost.

The relay stores into real SQLite through a hand-written wrapper that refuses
writes with :class:`BackendUnavailable` while ``down`` is set (as a full disk or
a busy database does). Nothing is acknowledged to the machine until stored, and
everything is stored, in order, once the backend takes writes again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import attrs
import pytest

from orchestrator.application.live import LiveRelay
from orchestrator.domain.errors import BackendUnavailable
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.live import LiveText, ReplyState, SequencedEvent
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.domain.ports import Backend, LiveEventStore
from orchestrator.testing.fakes import FakeClock
from tests.contract.conftest import FACTORIES, Chat, ask

pytestmark = pytest.mark.anyio


@pytest.fixture
async def backend(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Backend]:
    created = await FACTORIES["sqlite"](tmp_path)
    try:
        yield created
    finally:
        await created.close()


@attrs.define
class FlakyStore:
    """A live event store that refuses writes while ``down`` (reads pass through)."""

    store: LiveEventStore
    down: bool = False
    refused: int = 0

    async def reply_state(
        self, token: MachineToken, session_id: ChatSessionId, message_id: MessageId
    ) -> ReplyState:
        return await self.store.reply_state(token, session_id, message_id)

    async def last_sequence(self, session_id: ChatSessionId) -> int:
        return await self.store.last_sequence(session_id)

    async def store_events(self, token: MachineToken, events: Sequence[SequencedEvent]) -> None:
        if self.down:
            self.refused += 1
            raise BackendUnavailable("The database is busy or cannot be written.")
        await self.store.store_events(token, events)


async def test_events_the_backend_cannot_take_are_kept_unacknowledged_until_it_can(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    """Writes refused for a while: nothing acknowledged meanwhile, all stored once, in order."""
    assert isinstance(backend, LiveEventStore)
    flaky = FlakyStore(backend)
    relay = LiveRelay(flaky, FakeClock(), window=0.01)
    reply = await backend.claim_message(chat.token, (await ask(backend, alice, chat)).message_id)
    session_id = chat.session.chat_session_id
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

"""The machine's live outbox: requests to store, and the text it keeps for gap repairs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.adapters.remote._transport import MachineApiClient
from orchestrator.adapters.remote.live import LiveOutbox
from orchestrator.adapters.wire import MACHINE_WS_PATH
from orchestrator.domain.ids import ChatSessionId, MachineId, MachineToken, MessageId
from orchestrator.domain.live import GrowingText, LiveText
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.testing.serving import serving

pytestmark = pytest.mark.anyio

TOKEN = MachineToken(MachineId("mch_1"), "secret")


@attrs.define
class FakeMachineApi:
    """A machine API WebSocket that records every frame and acknowledges only when told."""

    frames: list[dict[str, Any]] = attrs.field(factory=list)
    received: anyio.Event = attrs.field(factory=anyio.Event)
    socket: web.WebSocketResponse | None = None

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.socket = ws
        self.received.set()
        async for message in ws:
            frame = json.loads(message.data)
            self.frames.extend(frame.get("batch", [frame]))
            self.received.set()
        return ws

    def syncs(self, session: str) -> int:
        return sum(1 for f in self.frames if f.get("sync") == session)

    async def until(self, check: Any) -> None:
        with anyio.fail_after(10):
            while not check():
                self.received = anyio.Event()
                await self.received.wait()

    async def ack(self, *numbers: int) -> None:
        assert self.socket is not None
        await self.socket.send_str(json.dumps({"ack": list(numbers)}))


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeMachineApi, str]]:
    fake = FakeMachineApi()
    app = web.Application()
    app.router.add_get(MACHINE_WS_PATH, fake.handle)
    async with serving(app) as url:
        yield fake, url


@attrs.define
class Running:
    """An outbox running against the connected fake, and the task group to start drains in."""

    fake: FakeMachineApi
    outbox: LiveOutbox
    tg: anyio.abc.TaskGroup


@pytest.fixture
async def running(api: tuple[FakeMachineApi, str]) -> AsyncIterator[Running]:
    fake, url = api
    async with MachineApiClient(url) as client, anyio.create_task_group() as tg:
        outbox = LiveOutbox(client, TOKEN)
        tg.start_soon(outbox.run)
        await fake.until(lambda: fake.socket is not None)
        yield Running(fake, outbox, tg)
        tg.cancel_scope.cancel()


@pytest.fixture
def fake(running: Running) -> FakeMachineApi:
    return running.fake


@pytest.fixture
def outbox(running: Running) -> LiveOutbox:
    return running.outbox


@pytest.fixture
def tg(running: Running) -> anyio.abc.TaskGroup:
    return running.tg


def _text(session: str, offset: int, text: str) -> LiveText:
    return LiveText(
        ChatSessionId(session), MessageId(f"msg_{session}"), PartId("prt_1"), TextKind.TEXT,
        offset, text,
    )  # fmt: skip


async def test_a_drain_asks_to_store_once_while_other_sessions_are_acknowledged(
    fake: FakeMachineApi, outbox: LiveOutbox, tg: anyio.abc.TaskGroup
) -> None:
    """Acknowledgements of other sessions' events do not send the drained session's sync again."""
    await outbox.send(_text("chs_a", 0, "hello"))
    for offset in range(3):
        await outbox.send(_text("chs_b", offset, "x"))
    drained = anyio.Event()

    async def drain() -> None:
        await outbox.drain(ChatSessionId("chs_a"))
        drained.set()

    tg.start_soon(drain)
    await fake.until(lambda: fake.syncs("chs_a") == 1)
    for number in (2, 3, 4):  # chs_b's events, one acknowledgement each
        await fake.ack(number)
    with anyio.fail_after(10):
        while outbox.unacked.keys() != {1}:
            await anyio.sleep(0.01)
    await anyio.wait_all_tasks_blocked()
    await outbox.send(_text("chs_c", 0, "probe"))  # after anything the drain sent
    await fake.until(lambda: any(f.get("live") == 5 for f in fake.frames))
    assert fake.syncs("chs_a") == 1
    await fake.ack(1)
    with anyio.fail_after(10):
        await drained.wait()
    assert fake.syncs("chs_a") == 1


async def test_a_drain_asks_again_for_what_was_sent_after_its_request(
    fake: FakeMachineApi, outbox: LiveOutbox, tg: anyio.abc.TaskGroup
) -> None:
    """A delta of the session sent after the sync (a gap repair) gets a sync of its own."""
    await outbox.send(_text("chs_a", 0, "hello"))
    tg.start_soon(outbox.drain, ChatSessionId("chs_a"))
    await fake.until(lambda: fake.syncs("chs_a") == 1)
    await outbox.send(_text("chs_a", 5, " world"))
    await fake.ack(1)
    await fake.until(lambda: fake.syncs("chs_a") == 2)
    assert [f["live"] for f in fake.frames if "live" in f] == [1, 2]


async def test_a_gap_refusal_resends_the_kept_text_from_where_the_server_is(
    fake: FakeMachineApi, outbox: LiveOutbox
) -> None:
    """The text kept for repairs is the deltas at their offsets; a repair sends its tail."""
    for offset, piece in [(0, "ab"), (2, "cd"), (4, "ef"), (2, "cd")]:
        await outbox.send(_text("chs_a", offset, piece))
    await fake.until(lambda: len(fake.frames) == 4)
    assert fake.socket is not None
    refusal = {"refused": 3, "error": "gap", "type": "TextGap", "stored_length": 2}
    await fake.socket.send_str(json.dumps(refusal))
    await fake.until(lambda: len(fake.frames) == 5)
    assert fake.frames[-1]["event"]["offset"] == 2
    assert fake.frames[-1]["event"]["text"] == "cdef"


def _placed(known: str, offset: int, text: str) -> str:
    """What the outbox kept before GrowingText: the whole text rebuilt on every delta."""
    merged = known[:offset] + text
    return known if known.startswith(merged) else merged


@given(st.lists(st.tuples(st.integers(0, 30), st.text(max_size=6)), max_size=25))
def test_growing_text_places_deltas_as_rebuilding_the_text_did(
    deltas: list[tuple[int, str]],
) -> None:
    """Appends, re-sends, overlaps and rewrites give the same text as rebuilding it each time."""
    grown, expected = GrowingText(), ""
    for offset, text in deltas:
        grown.place(offset, text)
        expected = _placed(expected, offset, text)
        assert grown.length == len(expected)
    assert grown.text == expected
    assert GrowingText.of(expected).text == expected

"""The live channel: machine events over the real app's WebSocket, shown at once, stored later."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import attrs
import pytest

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.remote.live import LiveOutbox, batch_frame, event_frame
from orchestrator.application.live import LiveRelay
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.ids import ChatSessionId, MachineToken, UserId
from orchestrator.domain.live import GrowingText, LivePart, LiveText
from orchestrator.domain.parts import PartId, TextKind, ToolPart, ToolState, ToolStatus
from orchestrator.entrypoints.web.state import LIVE
from tests.integration.harness import log_in, sse_events
from tests.integration.test_remote_chat import _claimed, _setup
from tests.integration.test_remote_support import LiveServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

PART = PartId("prt_text")


@attrs.define
class Turn:
    """A streaming reply and the machine's live outbox (running)."""

    user: UserId
    token: MachineToken
    reply: ChatMessage
    outbox: LiveOutbox

    @property
    def session_id(self) -> ChatSessionId:
        return self.reply.chat_session_id

    def text(self, offset: int, text: str, part: PartId = PART) -> LiveText:
        return LiveText(self.session_id, self.reply.message_id, part, TextKind.TEXT, offset, text)


@pytest.fixture
async def turn(server: LiveServer, remote: RemoteMachineBackend) -> AsyncIterator[Turn]:
    setup, reply = await _claimed(server, remote, "hi")
    outbox = LiveOutbox(remote, setup.token)
    async with anyio.create_task_group() as tg:
        tg.start_soon(outbox.run)
        yield Turn(setup.user, setup.token, reply, outbox)
        tg.cancel_scope.cancel()


@attrs.define
class Reader:
    """A browser's SSE stream of one session: chunks and events as they arrive."""

    events: list[tuple[str, str | None, Any]] = attrs.field(factory=list)
    changed: anyio.Event = attrs.field(factory=anyio.Event)

    def chunks(self) -> list[dict[str, Any]]:
        return [data for name, _, data in self.events if name == "chunk"]

    def text(self) -> str:
        return "".join(c["chunk"] for c in self.chunks())

    async def until(self, check: Any, seconds: float = 10) -> None:
        with anyio.fail_after(seconds):
            while not check(self):
                self.changed = anyio.Event()
                await self.changed.wait()


async def _read(http: aiohttp.ClientSession, url: str, reader: Reader, last: str | None) -> None:
    headers = {"Last-Event-ID": last} if last is not None else {}
    async with http.get(url, headers=headers) as response:
        assert response.status == 200
        async for event in sse_events(response.content):
            reader.events.append((event.name, event.id, event.data))
            reader.changed.set()


@pytest.fixture
async def http(server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await log_in(session, server.url)
        yield session


async def _stored_text(server: LiveServer, turn: Turn) -> str:
    parts = await server.backend.list_parts(turn.user, turn.session_id, turn.reply.message_id)
    return "".join(getattr(p.body, "text", "") for p in parts if p.part_id == PART)


async def _acked(turn: Turn) -> None:
    with anyio.fail_after(10):
        while turn.outbox.unacked:
            await anyio.sleep(0.02)


async def test_events_reach_the_browser_live_and_are_stored_once(
    server: LiveServer, turn: Turn, http: aiohttp.ClientSession
) -> None:
    """Deltas reach every browser's stream alike, in order; the part holds each character once."""
    url = f"{server.url}/api/sessions/{turn.session_id}/stream"
    reader, second = Reader(), Reader()
    words = [f"w{i:04d} " for i in range(40)]
    async with anyio.create_task_group() as tg:
        for each in (reader, second):
            tg.start_soon(_read, http, url, each, None)
            await each.until(lambda r: any(name == "messages" for name, _, _ in r.events))
        offset = 0
        for word in words:
            await turn.outbox.send(turn.text(offset, word))
            offset += len(word)
        tool = ToolPart("bash", "call_1", ToolState(ToolStatus.RUNNING, input='{"c":"ls"}'))
        await turn.outbox.send(
            LivePart(turn.session_id, turn.reply.message_id, PartId("prt_tool"), tool)
        )
        for each in (reader, second):
            await each.until(lambda r: any(name == "part" for name, _, _ in r.events))
        tg.cancel_scope.cancel()
    assert reader.text() == "".join(words)
    ids = [int(i) for name, i, _ in reader.events if name in ("chunk", "part") and i]
    assert ids == sorted(set(ids))
    live = [e for e in reader.events if e[0] in ("chunk", "part")]
    assert [e for e in second.events if e[0] in ("chunk", "part")] == live
    await turn.outbox.drain(turn.session_id)
    assert await _stored_text(server, turn) == "".join(words)
    # Re-sending everything (a reconnect after the acknowledgements were lost) adds nothing.
    await turn.outbox.send(turn.text(0, "".join(words)))
    await _acked(turn)
    assert await _stored_text(server, turn) == "".join(words)


async def test_a_browser_resumes_from_any_sequence_exactly(
    server: LiveServer, turn: Turn, http: aiohttp.ClientSession
) -> None:
    """Last-Event-ID anywhere (stored or not yet stored) gets exactly the rest, once."""
    url = f"{server.url}/api/sessions/{turn.session_id}/stream"
    words = [f"w{i:04d} " for i in range(30)]
    offset = 0
    for word in words[:20]:
        await turn.outbox.send(turn.text(offset, word))
        offset += len(word)
    await turn.outbox.drain(turn.session_id)  # the first 20 stored, the rest only live
    for word in words[20:]:
        await turn.outbox.send(turn.text(offset, word))
        offset += len(word)
    everything = Reader()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read, http, url, everything, "0")
        await everything.until(lambda r: r.text() == "".join(words))
        tg.cancel_scope.cancel()
    # The stored words come back as one chunk (one row per batch); the 10 only live, one each.
    assert len(everything.chunks()) == 11
    live = [int(c["sequence"]) for c in everything.chunks()[1:]]
    assert live == list(range(live[0], live[0] + 10))
    for cut in (5, 19, 20, 25):
        resumed = Reader()
        last = str(live[0] - 20 + cut - 1)  # the number the browser saw word `cut - 1` under
        async with anyio.create_task_group() as tg:
            tg.start_soon(_read, http, url, resumed, last)
            await resumed.until(lambda r, cut=cut: r.text() == "".join(words[cut:]))
            tg.cancel_scope.cancel()
        assert resumed.text() == "".join(words[cut:]), cut


async def test_a_browser_ahead_of_the_server_gets_a_snapshot(
    server: LiveServer, turn: Turn, http: aiohttp.ClientSession
) -> None:
    """A Last-Event-ID this server never gave gets a ``snapshot`` event, then the stream afresh."""
    await turn.outbox.send(turn.text(0, "hello "))
    await turn.outbox.drain(turn.session_id)
    url = f"{server.url}/api/sessions/{turn.session_id}/stream"
    reader = Reader()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read, http, url, reader, str(2**40))
        await reader.until(lambda r: len(r.chunks()) == 1)
        tg.cancel_scope.cancel()
    names = [name for name, _, _ in reader.events]
    assert names[:2] == ["snapshot", "messages"]
    assert reader.events[0][2] == {"reason": "ahead"}
    assert reader.text() == "hello "


async def _raw_refusal(server: LiveServer, token: MachineToken, frame: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token}"}
        async with http.ws_connect(f"{server.url}/api/machine/ws", headers=headers) as ws:
            await ws.send_str(frame)
            with anyio.fail_after(10):
                answer = await ws.receive_json()
    assert isinstance(answer, dict)
    return answer


async def test_bad_live_events_are_refused_and_change_nothing(
    server: LiveServer, remote: RemoteMachineBackend, turn: Turn
) -> None:
    """Another machine's reply, a wrong session, a gap: one sentence each, nothing stored."""
    await turn.outbox.send(turn.text(0, "abc"))
    await turn.outbox.drain(turn.session_id)
    other = await _setup(server, remote, "bob")
    stranger = await _raw_refusal(server, other.token, event_frame(1, turn.text(3, "x")))
    assert stranger["refused"] == 1
    assert stranger["type"] == "NotFound"
    wrong = attrs.evolve(turn.text(3, "x"), session_id=ChatSessionId("chs_nope"))
    misplaced = await _raw_refusal(server, turn.token, event_frame(2, wrong))
    assert misplaced["refused"] == 2
    assert misplaced["type"] == "NotFound"
    gap = await _raw_refusal(server, turn.token, event_frame(3, turn.text(10, "zzz")))
    assert gap["type"] == "TextGap"
    assert gap["stored_length"] == 3
    bad = await _raw_refusal(server, turn.token, json.dumps({"live": 4, "event": {"type": "x"}}))
    assert bad["refused"] == 4
    assert bad["type"] == "InvalidInput"
    # In a batch, a frame that is not an object is refused; the frames around it are handled.
    frames = [event_frame(5, turn.text(10, "zzz")), '"not a frame"']
    batched = await _raw_refusal(server, turn.token, batch_frame(frames))
    assert batched["refused"] == 5
    assert batched["type"] == "TextGap"
    assert await _stored_text(server, turn) == "abc"


async def test_a_gap_is_repaired_by_the_machine_and_an_overlap_ignored(
    server: LiveServer, turn: Turn
) -> None:
    """Out of order: a gap is refused, re-sent from the stored length; an overlap is skipped."""
    await turn.outbox.send(turn.text(0, "one "))
    await turn.outbox.drain(turn.session_id)
    # The machine made "one two three ", but "three " reaches the server before "two ".
    made = GrowingText.of("one two three ")
    turn.outbox._texts[(turn.reply.message_id, PART, TextKind.TEXT)] = made
    early = turn.text(8, "three ")
    turn.outbox._keep(1000, early)
    await turn.outbox._write(event_frame(1000, early))
    await turn.outbox.send(turn.text(2, "e two "))  # overlaps "one " by two characters
    await _acked(turn)
    await turn.outbox.drain(turn.session_id)
    assert await _stored_text(server, turn) == "one two three "


def _relay(server: LiveServer) -> LiveRelay:
    """The running app's live relay."""
    assert server.runner is not None
    return server.runner.app[LIVE]


async def test_a_session_with_nothing_unstored_and_no_reader_leaves_memory(
    server: LiveServer, turn: Turn
) -> None:
    """After a reply ends, its session's live state is dropped; a refused session never stays."""
    relay = _relay(server)
    relay.window = 0.05
    await turn.outbox.send(turn.text(0, "done "))
    await turn.outbox.drain(turn.session_id)
    assert turn.session_id in relay.sessions
    await relay.settle(turn.reply.message_id)
    wrong = attrs.evolve(turn.text(0, "x"), session_id=ChatSessionId("chs_nope"))
    await _raw_refusal(server, turn.token, event_frame(9, wrong))
    with anyio.fail_after(10):
        while relay.sessions:
            await anyio.sleep(0.05)
    # A later event is taken by fresh state, numbered past everything stored.
    await turn.outbox.send(turn.text(5, "more"))
    await turn.outbox.drain(turn.session_id)
    assert await _stored_text(server, turn) == "done more"


async def test_a_claimed_reply_is_read_ahead_so_its_first_event_needs_no_read(
    server: LiveServer, turn: Turn
) -> None:
    """The server reads a reply when the machine claims it: its first delta is taken at once."""
    first = turn.text(0, "hi ")
    with anyio.fail_after(10):
        while not _relay(server).ready(turn.token, first):  # read in the background
            await anyio.sleep(0.01)
    await turn.outbox.send(first)
    await turn.outbox.drain(turn.session_id)
    assert await _stored_text(server, turn) == "hi "


def _after_last_snapshot(reader: Reader) -> list[tuple[str, str | None, Any]]:
    """The events since the reader last started over (all of them if it never did)."""
    names = [name for name, _, _ in reader.events]
    start = len(names) - names[::-1].index("snapshot") if "snapshot" in names else 0
    return reader.events[start:]


async def test_ten_thousand_parts_in_one_turn_reach_the_browser_once_and_resume(
    server: LiveServer, turn: Turn, http: aiohttp.ClientSession
) -> None:
    """10,000 parts sent at once: a browser gets each once (live or after a snapshot), resumes."""
    url = f"{server.url}/api/sessions/{turn.session_id}/stream"
    count = 10_000
    ids = [f"prt_{i:05d}" for i in range(count)]
    tool = ToolPart("bash", "call_1", ToolState(ToolStatus.COMPLETED, output="ok"))

    def parts(reader: Reader) -> list[str]:
        return [data["part_id"] for name, _, data in _after_last_snapshot(reader) if name == "part"]

    def last_part(reader: Reader) -> bool:  # cheap: checked on every event
        recent = reader.events[-3:]  # a resumed stream sends the message list after them
        return any(name == "part" and data["part_id"] == ids[-1] for name, _, data in recent)

    reader = Reader()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read, http, url, reader, None)
        await reader.until(lambda r: any(name == "messages" for name, _, _ in r.events))
        for part_id in ids:
            await turn.outbox.send(
                LivePart(turn.session_id, turn.reply.message_id, PartId(part_id), tool)
            )
        await reader.until(last_part, 60)
        tg.cancel_scope.cancel()
    assert parts(reader) == ids
    await turn.outbox.drain(turn.session_id)
    seen = [int(i) for name, i, _ in _after_last_snapshot(reader) if name == "part" and i]
    resumed = Reader()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read, http, url, resumed, str(seen[5_999]))
        await resumed.until(last_part, 60)
        tg.cancel_scope.cancel()
    assert parts(resumed) == ids[6_000:]
    stored = await server.backend.list_parts(turn.user, turn.session_id, turn.reply.message_id)
    assert [p.part_id for p in stored] == ids[: len(stored)]


async def test_reasoning_reaches_the_browser_as_appends_and_a_resumed_reader_gets_it_whole(
    server: LiveServer, turn: Turn, http: aiohttp.ClientSession
) -> None:
    """A reasoning part is shown whole once, then each delta is a ``reasoning`` event with
    its offset (not the whole part again); a reader resuming before it gets the part whole."""
    url = f"{server.url}/api/sessions/{turn.session_id}/stream"
    think = PartId("prt_think")
    words = [f"r{i:03d} " for i in range(20)]
    reader = Reader()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read, http, url, reader, None)
        await reader.until(lambda r: any(name == "messages" for name, _, _ in r.events))
        offset = 0
        for word in words:
            delta = LiveText(
                turn.session_id, turn.reply.message_id, think, TextKind.REASONING, offset, word
            )
            await turn.outbox.send(delta)
            offset += len(word)
        rest = "".join(words[1:])
        await reader.until(
            lambda r: "".join(d["chunk"] for n, _, d in r.events if n == "reasoning") == rest
        )
        tg.cancel_scope.cancel()
    shown = [(name, data) for name, _, data in reader.events if name in ("part", "reasoning")]
    assert shown[0] == ("part", shown[0][1])
    assert shown[0][1]["body"]["text"] == words[0]
    # Each append lands where the text so far ends (deltas waiting together go as one).
    offset = len(words[0])
    for _, data in shown[1:]:
        assert (data["part_id"], data["offset"]) == (think, offset)
        offset += len(data["chunk"])
    assert offset == len("".join(words))
    assert reader.chunks() == []  # reasoning is never shown as reply text
    await turn.outbox.drain(turn.session_id)
    resumed = Reader()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_read, http, url, resumed, "0")
        await resumed.until(lambda r: any(name == "part" for name, _, _ in r.events))
        tg.cancel_scope.cancel()
    [part] = [data for name, _, data in resumed.events if name == "part"]
    assert part["body"]["text"] == "".join(words)

"""How much latency and how many backend writes our streaming relay adds to opencode's own.

Run: ``python benchmarks/relay.py`` measures the live relay as deployed (server and
machine process apart, see ``live_relay.py``; about 1 minute, ``--quick`` about 25 s).
``--in-process`` runs the earlier in-process sections below (about 3-4 minutes);
``--writes`` measures only their durable writes per 1,000 characters (seconds). Everything runs on
127.0.0.1 in this process, except the real ``opencode serve`` processes
(found by ``find_opencode``), which are always stopped at the end, Ctrl-C included.

Every delta the fake model streams is a unique word (``w0000042 ``) whose write
time is recorded, so a delta's latency at any point of the path is "when that
word was first seen there" minus "when the model wrote it" (one process, one
clock). See ``benchmarks/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import aiohttp
import anyio
import anyio.abc
import anyio.lowlevel
import attrs
from aiohttp import web

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.opencode import (
    OPENCODE_VERSION,
    OpencodeServer,
    ProcessPolicy,
    find_opencode,
    open_opencode_runtime,
)
from orchestrator.adapters.system import RandomIds, SystemClock
from orchestrator.application import accounts
from orchestrator.application.sessions import SessionManager, StreamSettings
from orchestrator.domain.agent import (
    AgentEvent,
    AgentRuntime,
    AgentSession,
    TextDelta,
)
from orchestrator.domain.chat import (
    ChatChunk,
    ChatSession,
    MessageRole,
    MessageStatus,
    SessionWork,
)
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.model import Worker
from orchestrator.domain.parts import MessagePart, PartBody, TextAppend, TextAppended
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.testing import PlainHasher
from orchestrator.testing.agent import Say, ScriptedAgentRuntime, ScriptedSession
from orchestrator.testing.fake_model import (
    DEFAULT_MODEL,
    FakeModelServer,
    RecordedRequest,
    _chunks,
    _is_title_request,
    opencode_environment,
)
from orchestrator.testing.serving import serving

sys.path.insert(0, str(Path(__file__).resolve().parent))
import opencode_policies  # the sibling benchmark, reused for section 5

PASSWORD = "correct horse battery"
Inner = TypeVar("Inner")
_WORD = re.compile(r"w(\d+)")


# --- stamping: unique words and when each was written --------------------------------------


@attrs.define
class Stamps:
    """Hands out unique words and records when the source wrote each one."""

    sent: dict[str, float] = attrs.field(factory=dict)
    _next: int = 0

    def text(self, deltas: int) -> str:
        """``deltas`` fresh words, each followed by a space: one delta each."""
        words = [f"w{self._next + i:07d} " for i in range(deltas)]
        self._next += deltas
        return "".join(words)

    def mark(self) -> int:
        """The index of the next word: words from here on belong to the next measurement."""
        return self._next

    def since(self, mark: int) -> list[str]:
        """Words written since ``mark``."""
        return [w for w in self.sent if int(w[1:]) >= mark]


@attrs.define
class Probe:
    """When each stamped word was first seen complete at one point of the path.

    Text arrives per stream (``key``: a session or a message); a word is complete
    once the space after it arrived, so words split across pieces still count.
    """

    times: dict[str, float] = attrs.field(factory=dict)
    _partial: dict[object, str] = attrs.field(factory=dict)

    def feed(self, key: object, text: str, now: float) -> None:
        words = (self._partial.get(key, "") + text).split(" ")
        self._partial[key] = words.pop()
        for word in words:
            if word:
                self.times.setdefault(word, now)


def latencies(stamps: Stamps, probe: Probe, words: Iterable[str]) -> list[float]:
    return [probe.times[w] - stamps.sent[w] for w in words if w in probe.times]


def stage(before: Probe | Stamps, after: Probe, words: Iterable[str]) -> list[float]:
    """Per word: time seen at ``after`` minus time seen at ``before``."""
    start = before.sent if isinstance(before, Stamps) else before.times
    return [after.times[w] - start[w] for w in words if w in after.times and w in start]


class StampedModel(FakeModelServer):
    """The fake model, streaming stamped words and recording when each was written.

    Title and non-streamed requests are left to :class:`FakeModelServer`.
    """

    def __init__(self, stamps: Stamps, deltas: int, delta_delay: float) -> None:
        super().__init__(delta_delay=delta_delay)
        self.stamps = stamps
        self.deltas = deltas

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()  # aiohttp caches the body for super()._chat
        if _is_title_request(body) or not body.get("stream"):
            return await super()._chat(request)
        self.requests.append(RecordedRequest(body=body, is_title=False))
        text = self.stamps.text(self.deltas)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        model = str(body.get("model", "fake-model"))
        for chunk in _chunks(f"chatcmpl-bench-{len(self.requests)}", model, text, None):
            delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
            content = delta.get("content") or ""
            if content:
                await asyncio.sleep(self.delta_delay)
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if content:
                self.stamps.sent[content.strip()] = time.perf_counter()
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class _StampingSend:
    """Wraps a scripted session's event channel: records when each delta is emitted."""

    def __init__(self, inner: Any, stamps: Stamps) -> None:
        self._inner = inner
        self._stamps = stamps

    async def send(self, item: object) -> None:
        if isinstance(item, TextDelta):
            self._stamps.sent[item.text.strip()] = time.perf_counter()
        await self._inner.send(item)

    def close(self) -> None:
        self._inner.close()


class StampedScriptedRuntime(ScriptedAgentRuntime):
    """The scripted agent, replying with stamped words at a fixed rate."""

    def __init__(self, stamps: Stamps, deltas: int, delta_delay: float) -> None:
        def script(prompt: str) -> list[Say]:
            return [Say(stamps.text(deltas), size=9, delay=delta_delay)]

        super().__init__(script=script)  # type: ignore[arg-type]
        self.stamps = stamps

    async def open_session(self, *args: Any, **kwargs: Any) -> ScriptedSession:
        session = await super().open_session(*args, **kwargs)
        session._send = cast(Any, _StampingSend(session._send, self.stamps))
        return session


# --- probes around our own code ----------------------------------------------------------


@attrs.define
class Probed(Generic[Inner]):
    """Wraps ``inner`` with a probe: all that a subclass does not define is the inner one's own."""

    inner: Inner
    probe: Probe

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@attrs.define
class ProbedSession(Probed[AgentSession]):
    """An agent session that notes when the session manager reads each delta."""

    def events(self) -> AsyncIterator[AgentEvent]:
        return self._events(self.inner.events())

    async def _events(self, events: AsyncIterator[AgentEvent]) -> AsyncIterator[AgentEvent]:
        async for event in events:
            if isinstance(event, TextDelta):
                self.probe.feed(event.agent_session_id, event.text, time.perf_counter())
            yield event


@attrs.define
class ProbedRuntime(Probed[AgentRuntime]):
    """An agent runtime whose sessions note when the session manager reads each delta."""

    async def open_session(self, *args: Any, **kwargs: Any) -> AgentSession:
        return ProbedSession(await self.inner.open_session(*args, **kwargs), self.probe)


@attrs.define
class CountingBackend:
    """The machine side of the backend, counting writes and work-feed wakeups."""

    inner: SQLiteBackend
    write_start: Probe = attrs.field(factory=Probe)
    write_end: Probe = attrs.field(factory=Probe)
    writes: int = 0
    chars: int = 0
    write_seconds: list[float] = attrs.field(factory=list)
    work_wakeups: int = 0
    cancelled_writes: int = 0

    def watch_work(self, token: MachineToken) -> AsyncIterator[list[SessionWork]]:
        return self._watch_work(token)

    async def _watch_work(self, token: MachineToken) -> AsyncIterator[list[SessionWork]]:
        async for feed in self.inner.watch_work(token):
            self.work_wakeups += 1
            yield feed

    async def _timed_write(self, message_id: MessageId, text: str, write: Any) -> Any:
        start = time.perf_counter()
        self.write_start.feed(message_id, text, start)
        # Shielded: ChunkCoalescer.__aexit__ cancels its ticker even mid-write, which
        # would drop this piece from the chunk stream (see benchmarks/README.md). The
        # benchmark measures every delta regardless, and counts how often it happens.
        with anyio.CancelScope(shield=True):
            done = await write()
        end = time.perf_counter()
        self.write_end.feed(message_id, text, end)
        self.writes += 1
        self.chars += len(text)
        self.write_seconds.append(end - start)
        try:
            await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class():
            self.cancelled_writes += 1
            raise
        return done

    async def append_chunk(
        self, token: MachineToken, message_id: MessageId, text: str
    ) -> ChatChunk:
        write = partial(self.inner.append_chunk, token, message_id, text)
        chunk: ChatChunk = await self._timed_write(message_id, text, write)
        return chunk

    async def append_part_text(
        self, token: MachineToken, message_id: MessageId, delta: TextAppend
    ) -> TextAppended:
        write = partial(self.inner.append_part_text, token, message_id, delta)
        appended: TextAppended = await self._timed_write(message_id, delta.text, write)
        return appended

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        self.writes += 1  # a durable write that streams no text
        return await self.inner.save_part(token, message_id, part_id, body)

    def __getattr__(self, name: str) -> Any:
        """Every other method is the inner backend's own, uncounted."""
        return getattr(self.inner, name)


# --- results ------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """The ``q``-quantile (nearest rank) of ``values``, in milliseconds; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


@attrs.define
class Latency:
    label: str
    values: list[float]
    expected: int

    @property
    def p50(self) -> float:
        return pct(self.values, 0.50)

    @property
    def p95(self) -> float:
        return pct(self.values, 0.95)

    @property
    def p99(self) -> float:
        return pct(self.values, 0.99)


@attrs.define
class RelayRun:
    """One run of the whole relay path."""

    label: str
    sessions: int
    backend: Latency
    sse: Latency | None = None
    agent: Probe | None = None
    counts: CountingBackend | None = None
    stamps: Stamps | None = None
    words: list[str] = attrs.field(factory=list)
    seconds: float = 0.0
    #: CPU time of this Python process (all threads) over the measured rounds, % of one core.
    cpu_percent: float = math.nan
    seen_backend: Probe | None = None
    error: str | None = None

    @property
    def writes_per_1k(self) -> float:
        if self.counts is None or not self.counts.chars:
            return math.nan
        return self.counts.writes * 1000 / self.counts.chars


@attrs.define(frozen=True)
class Plan:
    """How much to measure: the full run, or ``--quick``."""

    quick: bool
    delta_delay: float = 0.01
    #: Deltas (words of 9 characters) per reply.
    deltas: int = 150
    #: Measured replies for the baseline and the single-session relay (after one warm-up).
    replies: int = 4
    real_sessions: tuple[int, ...] = (1, 10)
    scripted_sessions: tuple[int, ...] = (1, 10, 50)
    #: Replies per session at 10 and 50 sessions (after one warm-up).
    concurrent_replies: int = 2
    policy_sessions: int = 3


FULL = Plan(quick=False)
QUICK = Plan(
    quick=True,
    deltas=60,
    replies=2,
    real_sessions=(1,),
    concurrent_replies=1,
    policy_sessions=2,
)


# --- 1. baseline: opencode's own GET /event --------------------------------------------------


async def measure_baseline(plan: Plan, env: Mapping[str, str], worker: Path) -> Latency:
    """Prompts on a bare ``opencode serve``; deltas timed when read from its ``GET /event``."""
    stamps = Stamps()
    probe = Probe()
    state: dict[str, Any] = {"session": None, "busy": False, "done": anyio.Event()}

    def on_event(server: OpencodeServer, event: Mapping[str, Any]) -> None:
        now = time.perf_counter()
        props = event.get("properties") or {}
        if props.get("sessionID") != state["session"]:
            return
        kind = event.get("type")
        if kind == "message.part.delta" and props.get("field") == "text":
            probe.feed(state["session"], str(props.get("delta", "")), now)
        elif kind == "session.status" and (props.get("status") or {}).get("type") == "busy":
            state["busy"] = True
        elif kind == "session.idle" and state["busy"]:
            state["done"].set()

    async with StampedModel(stamps, plan.deltas, plan.delta_delay) as model:
        sandbox = opencode_environment(worker.parent / "baseline-home", model.base_url)
        server = OpencodeServer(
            find_opencode(sandbox),
            worker,
            sandbox,
            on_event=on_event,
            on_exit=lambda _: None,
        )
        async with anyio.create_task_group() as tg:
            await tg.start(server.run)
            try:
                info = await server.request("POST", "/session", body={})
                state["session"] = str(info["id"])
                mark = 0
                for index in range(plan.replies + 1):
                    if index == 1:
                        mark = stamps.mark()
                    state["busy"], state["done"] = False, anyio.Event()
                    body = {
                        "model": {"providerID": "fake", "modelID": "fake-model"},
                        "parts": [{"type": "text", "text": f"prompt {index}"}],
                    }
                    await server.request(
                        "POST", f"/session/{state['session']}/prompt_async", body=body
                    )
                    with anyio.fail_after(60):
                        await state["done"].wait()
            finally:
                with anyio.CancelScope(shield=True):
                    await server.stop()
    words = stamps.since(mark)
    return Latency(
        "baseline: opencode GET /event, read directly", latencies(stamps, probe, words), len(words)
    )


# --- 2./3. the relay: SessionManager + backend + subscribers --------------------------------


@attrs.define
class Stack:
    """An embedded backend with a user, an online machine and worker, and a session manager."""

    backend: SQLiteBackend
    counting: CountingBackend
    user: UserId
    token: MachineToken
    worker: Worker
    manager: SessionManager


@asynccontextmanager
async def relay_stack(
    root: Path, runtime: AgentRuntime, settings: StreamSettings
) -> AsyncIterator[Stack]:
    await anyio.Path(root).mkdir(parents=True, exist_ok=True)
    hasher = PlainHasher()
    backend = await open_backend(
        root / "orchestrator.sqlite3", clock=SystemClock(), ids=RandomIds(), hasher=hasher
    )
    try:
        user = await accounts.create_user(backend, hasher, "alice", PASSWORD)
        machine, token = await backend.create_machine(user.user_id, "bench")
        await backend.go_online(token, str(root))
        worker = await backend.add_worker(user.user_id, machine.machine_id, "", "bench")
        worker = await backend.worker_heartbeat(token, worker.worker_id)
        worker = await backend.update_worker_models(token, worker.worker_id, [DEFAULT_MODEL])
        counting = CountingBackend(backend)
        manager = SessionManager(
            counting,
            token,
            runtime,
            workers=lambda: {worker.worker_id: worker},
            directory=lambda _: root,
            settings=settings,
            report=lambda _: None,
        )
        stack = Stack(backend, counting, user.user_id, token, worker, manager)
        async with anyio.create_task_group() as tg:
            tg.start_soon(manager.run)
            tg.start_soon(_heartbeats, stack)
            try:
                yield stack
            finally:
                tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await backend.close()


async def _heartbeats(stack: Stack) -> None:
    while True:
        await anyio.sleep(10)
        await stack.backend.heartbeat(stack.token)
        await stack.backend.worker_heartbeat(stack.token, stack.worker.worker_id)


async def follow_chunks(stack: Stack, session_id: ChatSessionId, probe: Probe) -> None:
    """The subscriber: ``watch_chunks`` from the start, noting when each word arrives."""
    async for batch in stack.backend.watch_chunks(stack.user, session_id, 0):
        now = time.perf_counter()
        for chunk in batch:
            probe.feed(session_id, chunk.chunk, now)


async def replies_done(stack: Stack, session_id: ChatSessionId, count: int) -> None:
    """Wait until the session has ``count`` finished assistant replies."""
    async for messages in stack.backend.watch_messages(stack.user, session_id):
        replies = [m for m in messages if m.role is MessageRole.ASSISTANT]
        if len(replies) >= count and all(m.status.finished for m in replies):
            failed = [m.error for m in replies if m.status is not MessageStatus.COMPLETED]
            if failed:
                raise RuntimeError(f"a reply failed: {failed[0]}")
            return


@asynccontextmanager
async def web_server(stack: Stack, data_dir: Path) -> AsyncIterator[str]:
    """The real aiohttp app on 127.0.0.1 over the same backend; yields its base URL."""
    from orchestrator.entrypoints.web import create_app

    settings = ServerSettings(data_dir=data_dir, host="127.0.0.1", port=0)
    app = create_app(stack.backend, hasher=PlainHasher(), clock=SystemClock(), settings=settings)
    async with serving(app) as url:
        yield url


async def follow_sse(
    http: aiohttp.ClientSession,
    base: str,
    session_id: ChatSessionId,
    probe: Probe,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """A signed-in browser on ``GET /api/sessions/{id}/stream``."""
    url = f"{base}/api/sessions/{session_id}/stream"
    async with http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as response:
        if response.status != 200:
            raise RuntimeError(f"the SSE stream answered {response.status}")
        task_status.started()
        event = ""
        async for raw in response.content:
            now = time.perf_counter()
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "chunk":
                probe.feed(session_id, json.loads(line[5:])["chunk"], now)


async def run_relay(
    label: str,
    plan: Plan,
    root: Path,
    runtime: AgentRuntime,
    stamps: Stamps,
    *,
    sessions: int,
    replies: int,
    settings: StreamSettings | None = None,
    sse: bool = False,
) -> RelayRun:
    """``sessions`` chats, each sending ``1 + replies`` messages (the first is a warm-up)."""
    settings = settings or StreamSettings(idle_timeout=timedelta(minutes=10))
    agent_probe = Probe()
    seen = Probe()
    seen_sse = Probe()
    probed = ProbedRuntime(runtime, agent_probe)
    async with relay_stack(root, probed, settings) as stack, AsyncExitStack() as exits:
        chats = [
            await stack.backend.start_session(stack.user, stack.worker.worker_id, DEFAULT_MODEL)
            for _ in range(sessions)
        ]
        async with anyio.create_task_group() as tg:
            for chat in chats:
                tg.start_soon(follow_chunks, stack, chat.chat_session_id, seen)
            if sse:
                base = await exits.enter_async_context(web_server(stack, root / "web"))
                http = await exits.enter_async_context(
                    aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                )
                login = {"username": "alice", "password": PASSWORD}
                async with http.post(f"{base}/api/login", json=login) as response:
                    if response.status != 200:
                        raise RuntimeError(f"sign-in failed: {await response.text()}")
                for chat in chats:
                    await tg.start(follow_sse, http, base, chat.chat_session_id, seen_sse)

            async def round_(index: int) -> None:
                async def one(chat: ChatSession) -> None:
                    await stack.backend.send_message(
                        stack.user, chat.chat_session_id, f"prompt {index}"
                    )
                    await replies_done(stack, chat.chat_session_id, index + 1)

                with anyio.fail_after(120):
                    async with anyio.create_task_group() as inner:
                        for chat in chats:
                            inner.start_soon(one, chat)

            await round_(0)
            mark = stamps.mark()
            writes_before = (stack.counting.writes, stack.counting.chars)
            started = time.perf_counter()
            cpu_started = time.process_time()
            for index in range(1, replies + 1):
                await round_(index)
            # Let the subscribers catch up with the last chunks (bounded).
            words = stamps.since(mark)
            probes = [seen, seen_sse] if sse else [seen]

            def caught_up() -> bool:
                return all(w in probe.times for probe in probes for w in words)

            with anyio.move_on_after(5):
                while not caught_up():  # noqa: ASYNC110 (a bounded wait, no event to wait on)
                    await anyio.sleep(0.01)
            last = max((seen.times[w] for w in words if w in seen.times), default=started)
            cpu = time.process_time() - cpu_started
            tg.cancel_scope.cancel()
        counts = stack.counting
        # Count only the measured rounds' writes.
        measured = CountingBackend(stack.backend)
        measured.writes = counts.writes - writes_before[0]
        measured.chars = counts.chars - writes_before[1]
        measured.write_seconds = counts.write_seconds
        measured.work_wakeups = counts.work_wakeups
        measured.cancelled_writes = counts.cancelled_writes
        measured.write_start, measured.write_end = counts.write_start, counts.write_end
    return RelayRun(
        label,
        sessions,
        Latency(label, latencies(stamps, seen, words), len(words)),
        Latency("relay: server SSE", latencies(stamps, seen_sse, words), len(words))
        if sse
        else None,
        agent=agent_probe,
        counts=measured,
        stamps=stamps,
        words=words,
        seconds=last - started,
        cpu_percent=100 * cpu / max(1e-9, time.perf_counter() - started),
        seen_backend=seen,
    )


async def relay_on_opencode(
    plan: Plan, tmp: Path, env: Mapping[str, str], policy: ProcessPolicy = ProcessPolicy.SHARED
) -> list[RelayRun]:
    """The relay over real opencode: one session (defaults, + SSE), no window, then 10 sessions."""
    runs: list[RelayRun] = []
    stamps = Stamps()
    async with StampedModel(stamps, plan.deltas, plan.delta_delay) as model:
        sandbox = opencode_environment(tmp / "relay-home", model.base_url)
        async with open_opencode_runtime(env=sandbox, policy=policy) as runtime:
            runs.append(
                await run_relay(
                    "relay: backend.watch_chunks",
                    plan,
                    tmp / "relay-1",
                    runtime,
                    stamps,
                    sessions=1,
                    replies=plan.replies,
                    sse=True,
                )
            )
            runs.append(
                await run_relay(
                    "relay, window 0: watch_chunks",
                    plan,
                    tmp / "relay-1-nowindow",
                    runtime,
                    stamps,
                    sessions=1,
                    replies=plan.replies,
                    settings=StreamSettings(coalesce_window=0, idle_timeout=timedelta(minutes=10)),
                )
            )
            for count in plan.real_sessions:
                if count == 1:
                    continue
                try:
                    runs.append(
                        await run_relay(
                            "opencode (real, shared)",
                            plan,
                            tmp / f"relay-{count}",
                            runtime,
                            stamps,
                            sessions=count,
                            replies=plan.concurrent_replies,
                        )
                    )
                except Exception as exc:  # the machine may not cope; say so and go on
                    failed = RelayRun("opencode (real, shared)", count, Latency("", [], 0))
                    failed.error = f"{type(exc).__name__}: {exc}"[:120]
                    runs.append(failed)
    return runs


async def relay_on_script(
    plan: Plan, tmp: Path, sessions: int, settings: StreamSettings | None = None, label: str = ""
) -> RelayRun:
    stamps = Stamps()
    async with StampedScriptedRuntime(stamps, plan.deltas, plan.delta_delay) as runtime:
        return await run_relay(
            label or "scripted agent",
            plan,
            tmp / f"scripted-{sessions}-{id(settings)}",
            runtime,
            stamps,
            sessions=sessions,
            replies=plan.replies if sessions == 1 else plan.concurrent_replies,
            settings=settings,
        )


# --- printing -----------------------------------------------------------------------------


def _f(value: float, width: int = 7, digits: int = 1) -> str:
    return f"{'-':>{width}}" if math.isnan(value) else f"{value:>{width}.{digits}f}"


def _ratio(value: float, base: float) -> str:
    if math.isnan(value) or math.isnan(base) or base <= 0:
        return "-"
    return f"{value / base:.1f}"


def print_report(
    plan: Plan,
    baseline: Latency,
    real: list[RelayRun],
    scripted: list[RelayRun],
    coalescing: list[RelayRun],
    policies: list[opencode_policies.Result],
    elapsed: float,
) -> None:
    mode = "quick" if plan.quick else "full"
    print()
    print(
        f"Relay benchmark ({mode}): opencode {OPENCODE_VERSION} (pinned), {os.cpu_count()} CPUs,"
        f" one 9-char delta every {plan.delta_delay * 1000:.0f} ms, {plan.deltas} deltas/reply;"
        f" coalescing defaults {StreamSettings().coalesce_window * 1000:.0f} ms /"
        f" {StreamSettings().coalesce_max_chars} chars"
    )
    print()
    print("1-2. Delta latency, 1 session, real opencode: model write -> seen by the reader (ms)")
    head = (
        f"  {'path':<46} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7}  {'x baseline p50/p95/p99':>22}"
    )
    print(head)
    rows: list[Latency] = [baseline]
    single = real[0]
    rows.append(single.backend)
    if single.sse is not None:
        rows.append(single.sse)
    rows.append(real[1].backend)
    for row in rows:
        ratios = "/".join(
            _ratio(getattr(row, q), getattr(baseline, q)) for q in ("p50", "p95", "p99")
        )
        missing = (
            f" ({row.expected - len(row.values)} lost)" if len(row.values) < row.expected else ""
        )
        print(
            f"  {row.label + missing:<46} {len(row.values):>5} {_f(row.p50)} {_f(row.p95)}"
            f" {_f(row.p99)}  {ratios:>22}"
        )
    print()
    print("   where the relay's time goes (1 session, defaults; per delta, ms p50 / p95):")
    assert single.agent is not None
    assert single.counts is not None
    assert single.stamps is not None
    assert single.seen_backend is not None
    words = single.words
    stages = [
        ("model -> session manager reads the delta", stage(single.stamps, single.agent, words)),
        (
            "  ... -> append_part_text starts (coalescing wait)",
            stage(single.agent, single.counts.write_start, words),
        ),
        (
            "  ... -> append_part_text returns (SQLite commit)",
            stage(single.counts.write_start, single.counts.write_end, words),
        ),
        (
            "  ... -> watch_chunks subscriber has it",
            stage(single.counts.write_end, single.seen_backend, words),
        ),
    ]
    for name, values in stages:
        print(f"     {name:<48} {_f(pct(values, 0.5))} / {_f(pct(values, 0.95))}")
    print()
    print("3. Concurrency: relay latency at the watch_chunks subscriber (ms), throughput")
    print(
        f"  {'agent':<26} {'sessions':>8} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7}"
        f" {'deltas/s':>9} {'chars/s':>8} {'writes/s':>8} {'write ms p50/p95':>16}"
        f" {'writes/1k ch':>12} {'work wakeups/write':>18} {'cancelled':>9} {'py CPU %':>8}"
    )
    concurrency = [("opencode (real, shared)", single), *[(r.label, r) for r in real[2:]]]
    concurrency += [(r.label, r) for r in scripted]
    for label, run in concurrency:
        if run.error:
            print(f"  {label:<26} {run.sessions:>8}  not measured: {run.error}")
            continue
        lat = run.backend
        rate = len(lat.values) / run.seconds if run.seconds > 0 else math.nan
        wakeups = (
            run.counts.work_wakeups / max(1, len(run.counts.write_seconds))
            if run.counts
            else math.nan
        )
        writes = run.counts.writes / run.seconds if run.counts and run.seconds > 0 else math.nan
        durations = run.counts.write_seconds if run.counts else []
        write_ms = f"{_f(pct(durations, 0.5), 0)}/{_f(pct(durations, 0.95), 0)}"
        print(
            f"  {label:<26} {run.sessions:>8} {len(lat.values):>6} {_f(lat.p50)} {_f(lat.p95)}"
            f" {_f(lat.p99)} {_f(rate, 9, 0)} {_f(rate * 9, 8, 0)} {_f(writes, 8, 0)}"
            f" {write_ms:>16} {_f(run.writes_per_1k, 12)} {_f(wakeups, 18, 2)}"
            f" {run.counts.cancelled_writes if run.counts else 0:>9} {_f(run.cpu_percent, 8, 0)}"
        )
    print()
    print("4. Durable writes (text and part writes) per 1,000 characters streamed, scripted agent")
    print(
        f"  {'coalescing':<40} {'writes':>7} {'chars':>7} {'writes/1k ch':>12}"
        f" {'x defaults':>10} {'p50 ms':>7} {'p95 ms':>7} {'cancelled':>9}"
    )
    base_rate = coalescing[0].writes_per_1k
    for run in coalescing:
        assert run.counts is not None
        print(
            f"  {run.label:<40} {run.counts.writes:>7} {run.counts.chars:>7}"
            f" {_f(run.writes_per_1k, 12)} {_ratio(run.writes_per_1k, base_rate):>10}"
            f" {_f(run.backend.p50)} {_f(run.backend.p95)} {run.counts.cancelled_writes:>9}"
        )
    real_rate = single.writes_per_1k
    print(
        f"  (real opencode, defaults: {_f(real_rate, 0)} writes/1k chars; window 0:"
        f" {_f(real[1].writes_per_1k, 0)})"
    )
    print()
    print("5. opencode process policies (benchmarks/opencode_policies.py)")
    for line in opencode_policies.table_lines(policies):
        print(f"  {line}")
    print()
    print(
        "cancelled = text writes still in flight when ChunkCoalescer.__aexit__ cancelled"
        " its ticker (shielded here; see README)"
    )
    print(f"Measured in one run of {elapsed:.0f} s.")


# --- main -----------------------------------------------------------------------------------


async def measure_all(plan: Plan) -> None:
    started = time.perf_counter()
    env = dict(os.environ)
    print(f"opencode: {find_opencode(env)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as raw:
        tmp = Path(raw)
        worker = tmp / "worker"
        worker.mkdir()
        print("1. baseline: opencode's own SSE ...", flush=True)
        baseline = await measure_baseline(plan, env, worker)
        print("2-3. relay over real opencode ...", flush=True)
        real = await relay_on_opencode(plan, tmp, env)
        print("3. relay over the scripted agent ...", flush=True)
        scripted = [await relay_on_script(plan, tmp, n) for n in plan.scripted_sessions]
        print("4. coalescing on and off ...", flush=True)
        no_wait = timedelta(minutes=10)
        coalescing = [
            scripted[0],
            await relay_on_script(
                plan,
                tmp,
                1,
                StreamSettings(coalesce_window=0, idle_timeout=no_wait),
                "window 0 (flush every loop turn)",
            ),
            await relay_on_script(
                plan,
                tmp,
                1,
                StreamSettings(coalesce_window=0, coalesce_max_chars=1, idle_timeout=no_wait),
                "window 0, max_chars 1 (no coalescing)",
            ),
        ]
        coalescing[0] = attrs.evolve(coalescing[0], label="defaults (50 ms / 4000 chars)")
        print("5. process policies ...", flush=True)
        policies = await opencode_policies.measure_policies(plan.policy_sessions)
    print_report(
        plan, baseline, real, scripted, coalescing, policies, time.perf_counter() - started
    )


async def main(plan: Plan) -> bool:
    """Run everything; False if Ctrl-C (or SIGTERM) stopped it, every process stopped."""
    interrupted = False

    async def stop_on_signal(scope: anyio.CancelScope) -> None:
        nonlocal interrupted
        # An anyio cancellation (not asyncio's own KeyboardInterrupt handling), so every
        # task group and shielded clean-up runs: opencode gets SIGTERM, then SIGKILL.
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                interrupted = True
                print("\ninterrupted: stopping every process ...", file=sys.stderr, flush=True)
                scope.cancel()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal, tg.cancel_scope)
        await measure_all(plan)
        tg.cancel_scope.cancel()
    return not interrupted


async def measure_writes(plan: Plan) -> None:
    """Only section 4's first row: durable writes per 1,000 characters (a few seconds)."""
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as raw:
        run = await relay_on_script(plan, Path(raw), 1)
    assert run.counts is not None
    print(
        f"durable writes: {run.counts.writes} for {run.counts.chars} characters"
        f" = {run.writes_per_1k:.1f} per 1,000 (scripted agent, 1 session, defaults)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (fewer deltas)")
    parser.add_argument(
        "--writes", action="store_true", help="only durable writes per 1,000 characters"
    )
    parser.add_argument(
        "--rate",
        type=int,
        default=100,
        metavar="WORDS",
        help="words per second each session's model writes (live relay; default 100)",
    )
    parser.add_argument(
        "--hops",
        action="store_true",
        help="also how long each word spends in each process on the way (live relay)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="the earlier in-process measurements (sections 1-5) instead of the live relay",
    )
    args = parser.parse_args()
    if args.rate < 1:
        parser.error("--rate must be at least 1 word per second")
    plan = QUICK if args.quick else FULL
    if not args.in_process and not args.writes:
        import live_relay

        live_plan = live_relay.QUICK_LIVE if args.quick else live_relay.FULL_LIVE
        live_plan = attrs.evolve(live_plan, rate=args.rate, hops=args.hops)
        started = time.perf_counter()
        report = anyio.run(live_relay.measure_live, live_plan, sys.modules[__name__])
        print("Live relay: orchestrator serve (pinned to one core) and the machine process apart,")
        print(
            f"real opencode {OPENCODE_VERSION}, {live_plan.deltas} words per reply,"
            f" {live_plan.rate} words/s per session;"
        )
        print("latency (ms) from the model writing a word to each reader seeing it:")
        print("\n".join(report))
        print(f"Measured in one run of {time.perf_counter() - started:.0f} s.")
    elif args.writes:
        anyio.run(measure_writes, plan)
    elif not anyio.run(main, plan):
        sys.exit(130)

"""Shared parts of the fault tests: a browser-like stream reader and the exact comparison.

Real opencode streams a reply of unique numbered words from the fake model; a
:class:`Browser` follows the session's SSE stream as the chat page does
(reconnecting with Last-Event-ID, starting over on a ``snapshot`` event). After
a fault, :func:`assert_exact` compares what the browser ended with, the stored
reply and the stored chunk events with what the model sent, word by word.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs

from tests.integration.chat_stage import Stage, open_session, signed_in, stage
from tests.integration.harness import log_in, running_server, sse_events, stop, wait_for_line

FINAL = ("completed", "interrupted", "failed", "aborted")


def numbered_words(count: int) -> str:
    """A reply of ``count`` unique numbered words, each followed by a space."""
    return "".join(f"w{i:04d} " for i in range(1, count + 1))


@attrs.define
class Browser:
    """What a chat page shows of the one reply, built only from the stream."""

    text: str = ""
    last: str | None = None
    snapshots: list[str] = attrs.field(factory=list)
    reply: dict[str, Any] | None = None
    fresh: bool = False
    connections: int = 0

    def on(self, name: str, data: Any) -> None:
        if name == "snapshot":
            self.snapshots.append(data["reason"])
            self.text, self.last, self.fresh = "", None, True
        elif name == "chunk":
            self.text += data["chunk"]
        elif name == "messages":
            replies = [m for m in data["messages"] if m["role"] == "assistant"]
            if replies:
                self.reply = replies[0]
                if self.fresh and self.reply["completed"]:
                    self.text = self.reply["content"]  # a fresh stream sends a finished reply whole
            self.fresh = False

    @property
    def done(self) -> bool:
        return self.reply is not None and self.reply["status"] in FINAL

    @property
    def words(self) -> int:
        return self.text.count(" ")


async def follow(base: str, session_id: str, browser: Browser) -> None:
    """Read the stream until the reply ends, reconnecting with Last-Event-ID like EventSource."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        while not browser.done:
            try:
                await log_in(http, base)
                headers = {"Last-Event-ID": browser.last} if browser.last else {}
                url = f"{base}/api/sessions/{session_id}/stream"
                async with http.get(url, headers=headers) as response:
                    assert response.status == 200
                    browser.connections += 1
                    browser.fresh = browser.last is None
                    async for event in sse_events(response.content):
                        browser.last = event.id or browser.last
                        browser.on(event.name, event.data)
                        if browser.done:
                            return
            except (aiohttp.ClientError, ConnectionError, AssertionError):
                await anyio.sleep(0.2)


async def chunks_for(base: str, session_id: str, after: str, seconds: float) -> list[str]:
    """The chunk texts one stream resumed after ``after`` receives within ``seconds``."""
    chunks: list[str] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await log_in(http, base)
        url = f"{base}/api/sessions/{session_id}/stream"
        with anyio.move_on_after(seconds):
            async with http.get(url, headers={"Last-Event-ID": after}) as response:
                assert response.status == 200
                async for event in sse_events(response.content):
                    if event.name in ("chunk", "snapshot"):
                        chunks.append(event.data.get("chunk", "<snapshot>"))
    return chunks


async def until(check: Any, seconds: float = 60) -> None:
    """Wait until ``check()`` holds (failing the test after ``seconds``)."""
    with anyio.fail_after(seconds):
        while not check():
            await anyio.sleep(0.05)


async def stored_reply(s: Stage, session_id: str) -> dict[str, Any]:
    """The session's one reply as the user API lists it."""
    async with signed_in(s.server) as api:
        listed = await api.call("GET", f"/api/sessions/{session_id}/messages")
    [reply] = [m for m in listed["messages"] if m["role"] == "assistant"]
    return dict(reply)


async def stored_chunks(s: Stage, session_id: str) -> str:
    """The reply's text as its stored chunk events hold it, replayed from sequence 0."""
    replay = Browser(last="0")
    with anyio.fail_after(60):
        await follow(s.server.url, session_id, replay)
    return replay.text


async def start_turn(s: Stage, workers: list[subprocess.Popen[str]], content: str = "count") -> str:
    """Start a machine process, open a session on a new worker and send one message."""
    workers.append(s.worker())
    wait_for_line(workers[-1], r"Machine .* is online", [])
    async with signed_in(s.server) as api:
        session_id = await open_session(api, s.token)
        await api.send(session_id, content)
    return session_id


def kill(process: subprocess.Popen[str]) -> None:
    """SIGKILL ``process`` and reap it."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def in_order_once(text: str, reply: str) -> str:
    """Why ``text`` is not a prefix of ``reply`` word for word ('' when it is)."""
    words, sent = text.split(), reply.split()
    doubled = sorted(w for w, n in Counter(words).items() if n > 1)
    if doubled:
        return f"words twice: {doubled[:10]}"
    if words != sent[: len(words)]:
        first = next(i for i, (a, b) in enumerate(zip(words, sent, strict=False)) if a != b)
        return f"out of order or missing from word {first}: {words[first : first + 5]}"
    return ""


async def assert_exact(
    s: Stage, session_id: str, browser: Browser, reply: str, status: str = "completed"
) -> dict[str, Any]:
    """Browser text, stored reply and stored chunks all equal; complete when ``status`` says."""
    stored = await stored_reply(s, session_id)
    chunks = await stored_chunks(s, session_id)
    assert stored["status"] == status, stored
    for name, text in (
        ("stored", stored["content"]),
        ("chunks", chunks),
        ("browser", browser.text),
    ):
        assert in_order_once(text, reply) == "", f"{name}: {in_order_once(text, reply)}"
    if status == "completed":
        assert stored["content"] == reply
    else:
        assert reply.startswith(stored["content"])
    words = stored["content"].count(" ")
    assert chunks == stored["content"], f"stored chunks {chunks.count(' ')} of {words} words"
    assert browser.text == stored["content"], f"browser {browser.words} of {words} words"
    return stored


@attrs.define
class Turn:
    """A reply streaming into a session with a browser following it, on real processes."""

    stage: Stage
    session_id: str
    browser: Browser
    workers: list[subprocess.Popen[str]]
    restarted: ExitStack

    @property
    def machine(self) -> subprocess.Popen[str]:
        """The machine process now running."""
        return self.workers[-1]

    def restart_server(self) -> None:
        """Start ``orchestrator serve`` again on the same port and data directory."""
        server = self.stage.server
        self.stage.server = self.restarted.enter_context(
            running_server(server.data_dir, server.port)
        )

    async def until_done(self, seconds: float = 90) -> None:
        """Wait until the browser shows the reply ended."""
        await until(lambda: self.browser.done, seconds)

    async def assert_exact(self, reply: str, status: str = "completed") -> dict[str, Any]:
        """See :func:`assert_exact`."""
        return await assert_exact(self.stage, self.session_id, self.browser, reply, status)


@asynccontextmanager
async def watched_reply(
    tmp_path: Path, reply: str, *, delta_delay: float = 0.02, shown: int = 40
) -> AsyncIterator[Turn]:
    """Server, machine process, opencode and fake model; a reply under way, ``shown`` words in."""
    workers: list[subprocess.Popen[str]] = []
    with stage(tmp_path, reply=reply, delta_delay=delta_delay) as s, ExitStack() as restarted:
        try:
            session_id = await start_turn(s, workers)
            browser = Browser()
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, s.server.url, session_id, browser)
                await until(lambda: browser.words >= shown)
                yield Turn(s, session_id, browser, workers, restarted)
                tg.cancel_scope.cancel()
        finally:
            for worker in workers:
                stop(worker)

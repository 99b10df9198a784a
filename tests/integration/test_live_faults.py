"""Faults on the live path, real processes: ``orchestrator serve``, ``worker start``, opencode.

Real opencode streams a reply of unique numbered words from the fake model; a
browser-like SSE client follows the session, reconnecting with Last-Event-ID
(and starting over on a ``snapshot`` event, as the chat page does). Whatever is
killed, the text the browser ends with and the stored reply are the same, with
every character once and in order.
"""

from __future__ import annotations

import json
import signal
import subprocess
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import attrs
import pytest

from tests.integration.harness import running_server, wait_for_line
from tests.integration.test_chat_end_to_end import (  # noqa: F401 -- a fixture
    Stage,
    _needs_opencode,
    ready_worker,
    signed_in,
    stage,
    stop,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("_needs_opencode")]

WORDS = [f"w{i:04d} " for i in range(1, 301)]
REPLY = "".join(WORDS)
FINAL = ("completed", "interrupted", "failed", "aborted")


@attrs.define
class Browser:
    """What a chat page shows of the one reply, built only from the stream."""

    text: str = ""
    last: str | None = None
    snapshots: list[str] = attrs.field(factory=list)
    reply: dict[str, Any] | None = None
    fresh: bool = False

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


async def follow(base: str, session_id: str, browser: Browser) -> None:
    """Read the stream until the reply ends, reconnecting with Last-Event-ID like EventSource."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        while not browser.done:
            try:
                login = {"username": "alice", "password": "correct horse battery"}
                async with http.post(f"{base}/api/login", json=login) as answer:
                    assert answer.status == 200
                headers = {"Last-Event-ID": browser.last} if browser.last else {}
                url = f"{base}/api/sessions/{session_id}/stream"
                async with http.get(url, headers=headers) as response:
                    assert response.status == 200
                    name = ""
                    browser.fresh = browser.last is None
                    async for raw in response.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("id: "):
                            browser.last = line[4:]
                        elif line.startswith("data: "):
                            browser.on(name, json.loads(line[6:]))
                            if browser.done:
                                return
            except (aiohttp.ClientError, ConnectionError, AssertionError):
                await anyio.sleep(0.2)


async def _until(check: Any, seconds: float = 60) -> None:
    with anyio.fail_after(seconds):
        while not check():
            await anyio.sleep(0.05)


async def _stored_reply(s: Stage, session_id: str) -> dict[str, Any]:
    async with signed_in(s.server) as api:
        listed = await api.call("GET", f"/api/sessions/{session_id}/messages")
    [reply] = [m for m in listed["messages"] if m["role"] == "assistant"]
    return dict(reply)


async def _turn(s: Stage, workers: list[subprocess.Popen[str]]) -> str:
    workers.append(s.worker())
    wait_for_line(workers[-1], r"Machine .* is online", [])
    async with signed_in(s.server) as api:
        worker_id, model = await ready_worker(api, s.token.split(":")[0])
        session = await api.call(
            "POST", f"/api/workers/{worker_id}/sessions", {"model": model}, 201
        )
        session_id = str(session.get("session", session)["chat_session_id"])
        await api.call("POST", f"/api/sessions/{session_id}/messages", {"content": "count"}, 201)
    return session_id


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.mark.parametrize("killed", ["server", "machine", "both"])
async def test_a_kill_mid_turn_leaves_browser_and_store_with_each_character_once(
    tmp_path: Path, killed: str
) -> None:
    """SIGKILL of the server, the machine process or both mid-turn: browser text == stored text."""
    workers: list[subprocess.Popen[str]] = []
    with stage(tmp_path, reply=REPLY, delta_delay=0.02) as s, ExitStack() as restarted:
        try:
            session_id = await _turn(s, workers)
            browser = Browser()
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow, s.server.url, session_id, browser)
                await _until(lambda: browser.text.count(" ") >= 40)
                if killed in ("server", "both"):
                    _kill(s.server.process)
                if killed in ("machine", "both"):
                    _kill(workers[-1])
                if killed in ("server", "both"):
                    s.server = restarted.enter_context(
                        running_server(s.server.data_dir, s.server.port)
                    )
                if killed in ("machine", "both"):
                    workers.append(s.worker())
                await _until(lambda: browser.done, 120)
            stored = await _stored_reply(s, session_id)
            if killed == "server":
                assert stored["status"] == "completed"
                assert stored["content"] == REPLY
            else:
                assert stored["status"] == "interrupted"
                assert REPLY.startswith(stored["content"])
                if killed == "machine":  # what the server held when the machine died is kept
                    assert stored["content"].count(" ") >= 40
            assert browser.text == stored["content"]
        finally:
            for worker in workers:
                stop(worker)

"""The whole chat path with real parts: server, machine process, opencode, fake model.

A client uses only the user API: it adds a worker, starts a session, sends
messages and reads the reply through the session's SSE stream.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import anyio
import attrs
import pytest

from orchestrator.testing.fake_model import FakeModelServer, opencode_environment
from tests.integration.harness import (
    NEEDS_OPENCODE,
    Server,
    cli_env,
    create_user_and_machine,
    fake_model_thread,
    processes_with_env,
    running_server,
    start_worker,
    wait_for_line,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_OPENCODE]

REPLY = "Hello from the fake model: this reply arrives in many small pieces."


@attrs.define
class Api:
    http: aiohttp.ClientSession
    base: str
    csrf: str = ""

    async def call(self, method: str, path: str, body: object = None, status: int = 200) -> Any:
        async with self.http.request(
            method, self.base + path, json=body, headers={"X-CSRF-Token": self.csrf}
        ) as response:
            text = await response.text()
            assert response.status == status, f"{method} {path}: {response.status} {text}"
            return json.loads(text) if text else None

    async def send(self, session_id: str, content: str, status: int = 201) -> Any:
        """Post a message to the session; its JSON answer."""
        return await self.call(
            "POST", f"/api/sessions/{session_id}/messages", {"content": content}, status
        )

    async def stream(
        self,
        session_id: str,
        until: Any,
        last_event_id: int | None = None,
        chunks_wanted: int | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Read the stream until ``until(messages)`` (or N chunks); return chunks and messages."""
        headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
        chunks: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        with anyio.fail_after(90):
            async with self.http.get(
                f"{self.base}/api/sessions/{session_id}/stream", headers=headers
            ) as response:
                assert response.status == 200
                event = ""
                async for raw in response.content:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data = json.loads(line[6:])
                        if event == "chunk":
                            chunks.append(data)
                            if chunks_wanted is not None and len(chunks) >= chunks_wanted:
                                return chunks, messages
                        elif event == "messages":
                            messages = data["messages"]
                            if until(messages):
                                return chunks, messages
                        elif event == "error":
                            raise AssertionError(data)
        raise AssertionError("the stream ended early")

    async def history(self, session_id: str) -> list[dict[str, Any]]:
        """Every stored message of the session, oldest first, read page by page by cursor."""
        pages: list[list[dict[str, Any]]] = []
        query: dict[str, str] = {}
        while True:
            path = f"/api/sessions/{session_id}/messages?{urlencode(query)}"
            page = await self.call("GET", path)
            pages.append(page["messages"])
            if page["cursor"] is None:
                return [message for earlier in reversed(pages) for message in earlier]
            assert page["has_more"], page
            assert len(pages) < 10_000, "the cursor never ran out"
            query["cursor"] = page["cursor"]

    async def stored_chunks(self, session_id: str) -> dict[str, str]:
        """Each reply's text as its stored chunk events hold it, replayed from sequence 0.

        The embedded server's live relay replays every stored chunk, page after page,
        before a resumed stream's first ``messages`` event.
        """
        chunks, _ = await self.stream(session_id, lambda _: True, last_event_id=0)
        texts: dict[str, str] = {}
        for chunk in chunks:
            texts[chunk["message_id"]] = texts.get(chunk["message_id"], "") + chunk["chunk"]
        return texts


def replies_finished(count: int) -> Any:
    def check(messages: list[dict[str, Any]]) -> bool:
        done = [
            m
            for m in messages
            if m["role"] == "assistant" and m["status"] not in ("streaming", "pending")
        ]
        return len(done) >= count

    return check


@asynccontextmanager
async def signed_in(server: Server) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = Api(http, server.url)
        await api.call(
            "POST", "/api/login", {"username": "alice", "password": "correct horse battery"}
        )
        api.csrf = (await api.call("GET", "/api/session"))["csrf_token"]
        yield api


@attrs.define
class Stage:
    server: Server
    model: FakeModelServer
    token: str
    root: Path
    env: dict[str, str]
    home: Path
    workdir: Path

    def worker(self) -> subprocess.Popen[str]:
        return start_worker(self.server.url, self.token, self.root, self.env, self.workdir)


@contextmanager
def stage(tmp_path: Path, **model_options: object) -> Iterator[Stage]:
    data_dir = tmp_path / "data"
    root = tmp_path / "projects"
    root.mkdir()
    (tmp_path / "machine").mkdir()
    with fake_model_thread(**model_options) as model, running_server(data_dir) as server:
        token = create_user_and_machine(data_dir)
        env = opencode_environment(
            tmp_path / "opencode", model.base_url, base_env=cli_env(data_dir)
        )
        yield Stage(server, model, token, root, env, tmp_path / "opencode", tmp_path / "machine")


async def ready_worker(
    api: Api, machine_id: str, policy: dict[str, str] | None = None
) -> tuple[str, str]:
    """Add a worker on the root folder and wait until it is online with its models."""
    body: dict[str, object] = {"directory": ""}
    if policy is not None:
        body["permission_policy"] = policy
    created = await api.call("POST", f"/api/machines/{machine_id}/workers", body, 201)
    worker_id = created["worker"]["worker_id"] if "worker" in created else created["worker_id"]
    deadline = time.monotonic() + 60
    while True:
        listed = await api.call("GET", f"/api/machines/{machine_id}/workers")
        [worker] = [w for w in listed["workers"] if w["worker_id"] == worker_id]
        if worker["status"] == "online" and worker["models"]:
            return worker_id, worker["models"][0]
        assert time.monotonic() < deadline, worker
        await anyio.sleep(0.2)


async def open_session(api: Api, token: str, policy: dict[str, str] | None = None) -> str:
    """Add a ready worker on the token's machine and start a session on it; its id."""
    worker_id, model = await ready_worker(api, token.split(":")[0], policy)
    created = await api.call("POST", f"/api/workers/{worker_id}/sessions", {"model": model}, 201)
    return str(created.get("session", created)["chat_session_id"])


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@attrs.frozen
class Online:
    """The stage's machine process, online, and its owner signed in."""

    machine: subprocess.Popen[str]
    api: Api
    lines: list[str]


@asynccontextmanager
async def machine_online(s: Stage) -> AsyncIterator[Online]:
    """Start the stage's machine, wait until it is online and sign in; stop it after."""
    machine = s.worker()
    lines: list[str] = []
    try:
        wait_for_line(machine, r"Machine .* is online", lines)
        async with signed_in(s.server) as api:
            yield Online(machine, api, lines)
    finally:
        stop(machine)


async def test_messages_stream_live_keep_history_and_resume_after_reconnect(
    tmp_path: Path,
) -> None:
    """Chunks arrive in order and add up to the reply; history carries over; resume has no gap."""
    with stage(tmp_path, reply=REPLY, delta_delay=0.01) as s:
        async with machine_online(s) as online:
            api = online.api
            session_id = await open_session(api, s.token)

            await api.send(session_id, "first question")
            chunks, messages = await api.stream(session_id, replies_finished(1))
            reply = next(m for m in messages if m["role"] == "assistant")
            assert reply["status"] == "completed"
            assert reply["content"] == REPLY
            sequences = [c["sequence"] for c in chunks]
            assert sequences == sorted(set(sequences))
            assert "".join(c["chunk"] for c in chunks) == REPLY

            await api.send(session_id, "second question")
            _, messages = await api.stream(session_id, replies_finished(2))
            assert [m["status"] for m in messages if m["role"] == "assistant"] == [
                "completed",
                "completed",
            ]
            # opencode sent the whole conversation: the model saw the first question again.
            assert "first question" in s.model.chat_requests[-1].user_texts
            assert "second question" in s.model.chat_requests[-1].user_texts

            # A client that saw the first reply's text gets exactly the rest, no gap, no dup
            # (stored text comes back as one chunk per batch: at least one per reply).
            everything, _ = await api.stream(session_id, replies_finished(2), last_event_id=0)
            assert len(everything) >= 2
            resumed, _ = await api.stream(
                session_id, replies_finished(2), last_event_id=everything[0]["sequence"]
            )
            assert resumed == everything[1:]
        assert online.machine.returncode == 0, "".join(online.lines)


async def test_a_machine_killed_mid_reply_marks_it_interrupted_and_carries_on(
    tmp_path: Path,
) -> None:
    """SIGKILL mid-reply: no opencode left behind; on restart the reply is interrupted, not lost."""
    with stage(tmp_path, reply="slow " * 200, delta_delay=0.05) as s:
        first = s.worker()
        second: subprocess.Popen[str] | None = None
        lines: list[str] = []
        try:
            wait_for_line(first, r"Machine .* is online", lines)
            async with signed_in(s.server) as api:
                session_id = await open_session(api, s.token)
                await api.send(session_id, "go slowly")

                await api.stream(session_id, lambda _: False, chunks_wanted=3)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                with anyio.fail_after(15):
                    while processes_with_env(str(s.home)):
                        await anyio.sleep(0.1)

                s.model.reply = "Back again."
                s.model.delta_delay = 0.0
                second = s.worker()
                _, messages = await api.stream(session_id, replies_finished(1))
                interrupted = next(m for m in messages if m["role"] == "assistant")
                assert interrupted["status"] == "interrupted"
                assert interrupted["content"].startswith("slow")
                assert interrupted["error"]

                await api.send(session_id, "again")
                _, messages = await api.stream(session_id, replies_finished(2))
                replies = [m for m in messages if m["role"] == "assistant"]
                assert [r["status"] for r in replies] == ["interrupted", "completed"]
                assert replies[1]["content"] == "Back again."
        finally:
            if first.poll() is None:
                first.kill()
            if second is not None:
                stop(second)

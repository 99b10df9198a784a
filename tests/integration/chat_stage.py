"""One home for the chat tests' setup: server, fake model, machine process, a signed-in API.

``stage`` starts the server and the fake model; ``machine_online`` starts the
machine process and signs its owner in; ``open_session`` adds a ready worker
and starts a session on it; ``Api`` speaks the user API as the browser does.
"""

from __future__ import annotations

import json
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

from orchestrator.testing.fake_model import FakeModelServer, opencode_environment
from tests.integration.harness import (
    Server,
    cli_env,
    create_user_and_machine,
    describe,
    fake_model_thread,
    log_in,
    processes_with_env,
    running_server,
    sse_events,
    start_worker,
    stop,
    wait_for_line,
)


@attrs.define
class Api:
    """The user API as a signed-in browser calls it (cookie session, CSRF header)."""

    http: aiohttp.ClientSession
    base: str
    csrf: str = ""

    async def call(self, method: str, path: str, body: object = None, status: int = 200) -> Any:
        """Call ``method path`` with a JSON body, expect ``status``; the JSON answer."""
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
                async for event in sse_events(response.content):
                    if event.name == "chunk":
                        chunks.append(event.data)
                        if chunks_wanted is not None and len(chunks) >= chunks_wanted:
                            return chunks, messages
                    elif event.name == "messages":
                        messages = event.data["messages"]
                        if until(messages):
                            return chunks, messages
                    elif event.name == "error":
                        raise AssertionError(event.data)
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
    """A stream condition: at least ``count`` replies have ended."""

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
    """An Api for alice, signed in on ``server``."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield Api(http, server.url, await log_in(http, server.url))


@attrs.define
class Stage:
    """A running server and fake model, alice and her machine token, the machine's folders."""

    server: Server
    model: FakeModelServer
    token: str
    root: Path
    env: dict[str, str]
    home: Path
    workdir: Path

    @property
    def machine_id(self) -> str:
        """The ID of alice's machine, the first half of its token."""
        return self.token.split(":")[0]

    def worker(self) -> subprocess.Popen[str]:
        """Start the machine process (``worker start``) for the stage's token."""
        return start_worker(self.server.url, self.token, self.root, self.env, self.workdir)

    async def machine_gone(self, timeout: float) -> None:
        """Wait until no process of the machine's (its sandbox HOME in the environment) is left."""
        deadline = time.monotonic() + timeout
        while left := processes_with_env(str(self.home)):
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout:g} s: {describe(left)}")
            await anyio.sleep(0.05)


@contextmanager
def stage(tmp_path: Path, **model_options: object) -> Iterator[Stage]:
    """Start the fake model (with ``model_options``) and the server under ``tmp_path``."""
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


async def start_session(api: Api, worker_id: str, model: str) -> str:
    """Start a session on the worker with ``model``; its id."""
    created = await api.call("POST", f"/api/workers/{worker_id}/sessions", {"model": model}, 201)
    return str(created.get("session", created)["chat_session_id"])


async def open_session(api: Api, token: str, policy: dict[str, str] | None = None) -> str:
    """Add a ready worker on the token's machine and start a session on it; its id."""
    return await start_session(api, *await ready_worker(api, token.split(":")[0], policy))


@attrs.frozen
class Online:
    """The stage's machine process, online, and its owner signed in."""

    stage: Stage
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
            yield Online(s, machine, api, lines)
    finally:
        stop(machine)


@attrs.frozen
class Ready(Online):
    """An online stage with one ready worker on its machine."""

    worker_id: str
    #: The first model the worker offers.
    model: str

    async def open_session(self) -> str:
        """Start a session on the worker with its first model; its id."""
        return await start_session(self.api, self.worker_id, self.model)

    async def api_token(self, name: str) -> str:
        """A new user API token called ``name``, made as the web UI makes one; its secret."""
        return str((await self.api.call("POST", "/api/tokens", {"name": name}, 201))["secret"])


@asynccontextmanager
async def worker_ready(
    tmp_path: Path, worker_policy: dict[str, str] | None = None, **model_options: object
) -> AsyncIterator[Ready]:
    """The stage (model with ``model_options``), its machine online and a worker ready on it."""
    with stage(tmp_path, **model_options) as s:
        async with machine_online(s) as online:
            worker_id, model = await ready_worker(online.api, s.machine_id, worker_policy)
            yield Ready(s, online.machine, online.api, online.lines, worker_id, model)

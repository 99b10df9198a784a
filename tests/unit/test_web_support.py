"""Shared harness for the web tests: the real app over an in-memory backend (no tests here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.application import accounts
from orchestrator.domain.chat import ChatMessage, ChatSession
from orchestrator.domain.ids import MachineToken, UserId
from orchestrator.domain.model import Machine, User, Worker
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web import create_app
from orchestrator.entrypoints.web.auth import CSRF_MESSAGE
from orchestrator.entrypoints.web.state import KEEPALIVE
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds

PASSWORD = "correct horse battery"
MODEL = "fake/model-a"

Client = TestClient[web.Request, web.Application]


def settings_for(data_dir: Path, **changes: Any) -> ServerSettings:
    """Settings for a test server: small limits, a fast sweeper."""
    defaults: dict[str, Any] = {
        "data_dir": data_dir,
        "max_body_bytes": 4096,
        "login_attempts_per_minute": 3,
        "sweep_interval": timedelta(milliseconds=10),
    }
    return ServerSettings(**{**defaults, **changes})


@attrs.define
class Harness:
    """A running app, its fake backend and clock, and a way to open more browsers."""

    server: TestServer
    client: Client
    backend: InMemoryBackend
    clock: FakeClock
    hasher: PlainHasher
    extra_clients: list[Client] = attrs.field(factory=list)

    @property
    def app(self) -> web.Application:
        return self.server.app

    async def new_client(self) -> Client:
        """Another browser with its own cookie jar."""
        client: Client = TestClient(self.server)
        await client.start_server()
        self.extra_clients.append(client)
        return client

    async def create_user(self, username: str = "alice") -> User:
        return await accounts.create_user(self.backend, self.hasher, username, PASSWORD)

    async def sign_in(self, client: Client | None = None, username: str = "alice") -> str:
        """Create ``username`` if needed, sign ``client`` in; returns the CSRF token."""
        client = client or self.client
        if await self.backend.find_user(username) is None:
            await self.create_user(username)
        response = await client.post(
            "/api/login", json={"username": username, "password": PASSWORD}
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        return str(body["csrf_token"])

    async def machine_of(self, username: str = "alice") -> tuple[Machine, MachineToken]:
        """A machine owned by ``username`` (created straight in the backend)."""
        found = await self.backend.find_user(username)
        user = found[0] if found else await self.create_user(username)
        return await self.backend.create_machine(user.user_id, "laptop")


@asynccontextmanager
async def running_app(
    data_dir: Path,
    *,
    backend: InMemoryBackend | None = None,
    keepalive: float | None = None,
    **changes: Any,
) -> AsyncIterator[Harness]:
    """Start the app on a loopback test server; stop it afterwards.

    ``keepalive`` shortens the seconds between SSE keepalive comments.
    """
    clock = FakeClock()
    hasher = PlainHasher()
    if backend is None:
        backend = InMemoryBackend(clock=clock, ids=SequentialIds(), hasher=hasher)
    else:
        assert isinstance(backend.clock, FakeClock)
        assert isinstance(backend.hasher, PlainHasher)
        clock, hasher = backend.clock, backend.hasher
    app = create_app(
        backend, hasher=hasher, clock=clock, settings=settings_for(data_dir, **changes)
    )
    if keepalive is not None:
        app[KEEPALIVE] = keepalive
    server = TestServer(app, host="127.0.0.1")
    client: Client = TestClient(server)
    await client.start_server()
    harness = Harness(server, client, backend, clock, hasher)
    try:
        yield harness
    finally:
        for extra in harness.extra_clients:
            await extra.close()
        await client.close()
        await backend.close()


@attrs.frozen
class SseEvent:
    """One Server-Sent Event as a browser sees it."""

    event: str
    data: Any
    id: int | None = None


async def next_sse(response: ClientResponse, *, timeout: float = 5) -> SseEvent:
    """The next event of an SSE response (comments skipped), within ``timeout`` seconds."""
    event, data, event_id = "", "", None
    with anyio.fail_after(timeout):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("id: "):
                event_id = int(line.removeprefix("id: "))
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and event:
                return SseEvent(event, json.loads(data), event_id)


@attrs.frozen
class Chat:
    """A signed-in owner with an online worker that offers :data:`MODEL`."""

    web: Harness
    csrf: str
    user: UserId
    token: MachineToken
    worker: Worker

    @property
    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}

    async def post(
        self, path: str, body: object = None, client: Client | None = None
    ) -> tuple[int, Any]:
        response = await (client or self.web.client).post(path, json=body, headers=self.headers)
        return response.status, await response.json()

    async def start(self) -> ChatSession:
        return await self.web.backend.start_session(self.user, self.worker.worker_id, MODEL)

    async def claimed(self, text: str) -> tuple[ChatSession, ChatMessage]:
        """A new session where ``text`` was sent and the machine claimed it: session and reply."""
        session = await self.start()
        backend = self.web.backend
        sent = await backend.send_message(self.user, session.chat_session_id, text)
        return session, await backend.claim_message(self.token, sent.message_id)


async def call(owner: Chat, method: str, path: str, body: object = None) -> tuple[int, Any]:
    """Send a request with the owner's CSRF header; return the status and JSON (None if empty)."""
    response = await owner.web.client.request(method, path, json=body, headers=owner.headers)
    text = await response.text()
    return response.status, (await response.json()) if text else None


async def machine_call(
    web: Harness, token: MachineToken, method: str, **args: object
) -> tuple[int, Any]:
    """POST ``/api/machine/METHOD`` with the machine's bearer token; the status and JSON body."""
    response = await web.client.post(
        f"/api/machine/{method}", json=args, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status, await response.json()


async def assert_needs_sign_in(web: Harness, method: str, path: str, body: object = None) -> None:
    """Without a session ``method path`` answers 401 with one sentence."""
    response = await web.client.request(method, path, json={} if body is None else body)
    assert response.status == 401
    assert await response.json() == {"error": "Sign in first.", "type": "AuthenticationFailed"}


async def assert_needs_csrf(
    web: Harness, method: str, path: str, csrf: str | None, body: object
) -> None:
    """Signed in, ``method path`` without the right CSRF token (``csrf``) answers 403."""
    await web.sign_in()
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    response = await web.client.request(method, path, json=body, headers=headers)
    assert response.status == 403
    assert (await response.json())["error"] == CSRF_MESSAGE


async def online_worker(web: Harness) -> Chat:
    """Sign alice in and give her an online worker that offers :data:`MODEL`."""
    csrf = await web.sign_in()
    machine, token = await web.machine_of()
    user = machine.user_id
    backend = web.backend
    worker = await backend.add_worker(user, machine.machine_id, "repo", None)
    await backend.go_online(token, "/srv")
    await backend.update_worker_models(token, worker.worker_id, [MODEL, "fake/model-b"])
    worker = await backend.worker_heartbeat(token, worker.worker_id)
    return Chat(web, csrf, user, token, worker)

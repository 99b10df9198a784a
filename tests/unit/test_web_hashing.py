"""Password hashing runs off the event loop: sign-ins in flight never stall other requests."""

from __future__ import annotations

import threading
from pathlib import Path

import aiohttp
import anyio
import attrs
import pytest
from aiohttp.test_utils import TestClient, TestServer

from orchestrator.application import accounts
from orchestrator.entrypoints.web import create_app
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds
from tests.unit.test_web_support import PASSWORD, Client, settings_for

pytestmark = pytest.mark.anyio

SIGN_INS = 40


@attrs.define
class GatedHasher(PlainHasher):
    """A hasher whose checks wait until the test opens the gate, like a slow argon2."""

    gate: threading.Event = attrs.field(factory=threading.Event)
    waiting: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def verify(self, hashed: str, secret: str) -> bool:
        with self._lock:
            self.waiting += 1
        # Bounded, so a hasher wrongly run on the event loop fails the test instead of hanging it.
        if not self.gate.wait(timeout=5):
            self.gate.set()
        return super().verify(hashed, secret)


async def test_other_requests_complete_while_forty_sign_ins_are_hashing(tmp_path: Path) -> None:
    """While 40 sign-ins wait on the hasher, a signed-in user's request is answered at once."""
    clock = FakeClock()
    hasher = GatedHasher()
    backend = InMemoryBackend(clock=clock, ids=SequentialIds(), hasher=hasher)
    await accounts.create_user(backend, hasher, "alice", PASSWORD)
    settings = settings_for(tmp_path, login_attempts_per_minute=100)
    app = create_app(backend, hasher=hasher, clock=clock, settings=settings)
    server = TestServer(app, host="127.0.0.1")
    bystander: Client = TestClient(server)  # it starts and stops the server
    async with bystander:
        hasher.gate.set()
        signed_in = await bystander.post(
            "/api/login", json={"username": "alice", "password": PASSWORD}
        )
        assert signed_in.status == 200
        hasher.gate.clear()
        statuses: list[int] = []

        async def sign_in() -> None:
            async with (
                aiohttp.ClientSession() as browser,
                browser.post(
                    server.make_url("/api/login"),
                    json={"username": "alice", "password": PASSWORD},
                ) as response,
            ):
                statuses.append(response.status)

        async with anyio.create_task_group() as tg:
            for _ in range(SIGN_INS):
                tg.start_soon(sign_in)
            with anyio.fail_after(5):
                while hasher.waiting < 2:  # sign-ins are in the hasher now
                    await anyio.sleep(0.01)
                response = await bystander.get("/api/machines")
            assert response.status == 200
            assert statuses == []  # every sign-in is still in flight
            hasher.gate.set()
    assert statuses == [200] * SIGN_INS

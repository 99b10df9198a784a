"""The Convex adapter never blocks the event loop and never hangs, on both transports.

The deployments here are loopback stand-ins of Convex's HTTP API: one that
answers every call after 300 ms, one that accepts connections and never
answers. The real ``convex.ConvexClient`` (in the subscription child) is pointed
at the silent one.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import anyio
import pytest
from aiohttp import web

from orchestrator.adapters.convex import open_convex_backend
from orchestrator.adapters.convex.backend import TransportName
from orchestrator.domain.errors import BackendUnavailable
from orchestrator.domain.ids import UserId
from orchestrator.testing.serving import serving

pytestmark = pytest.mark.anyio

TRANSPORTS: tuple[TransportName, ...] = ("websocket", "http")
SLOW = 0.3


class SlowDeployment:
    """Answers every function call with 0 after ``SLOW`` seconds; counts calls in flight."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await anyio.sleep(SLOW)
        finally:
            self.in_flight -= 1
        return web.json_response({"status": "success", "value": 0.0})


@pytest.fixture
async def slow() -> AsyncIterator[tuple[str, SlowDeployment]]:
    deployment = SlowDeployment()
    app = web.Application()
    app.router.add_post("/api/{kind}", deployment.handle)
    async with serving(app) as url:
        yield url, deployment


@pytest.fixture
def silent() -> Iterator[str]:
    """A port whose connections the kernel accepts and nobody ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_event_loop_keeps_ticking_during_concurrent_calls(
    transport: TransportName, slow: tuple[str, SlowDeployment]
) -> None:
    """Ten calls to a slow deployment run at once while the event loop keeps ticking."""
    url, deployment = slow
    backend = open_convex_backend(url, transport=transport, timeout=10)
    ticks = 0

    async def tick(done: anyio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(0.01)

    try:
        done = anyio.Event()
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(tick, done)
            async with anyio.create_task_group() as calls:
                for _ in range(10):
                    calls.start_soon(backend.count_users)
            done.set()
    finally:
        await backend.close()
    assert (deployment.calls, deployment.most_in_flight) == (10, 10)
    # A call that held the loop for 300 ms would leave it a handful of ticks at most.
    assert ticks >= 10


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_call_to_a_silent_deployment_times_out(
    transport: TransportName, silent: str
) -> None:
    """A deployment that accepts and never answers: the call ends as BackendUnavailable."""
    backend = open_convex_backend(silent, transport=transport, timeout=0.5)
    try:
        with pytest.raises(BackendUnavailable, match="cannot be reached"):
            await backend.get_user(UserId("usr_1"))
    finally:
        await backend.close()


async def test_a_subscription_to_a_silent_deployment_blocks_nothing(silent: str) -> None:
    """The official client waiting on a silent deployment freezes only its child process."""
    backend = open_convex_backend(silent, transport="websocket", timeout=0.5)
    got: list[object] = []
    ticks = 0

    async def watch() -> None:
        async for machines in backend.watch_machines(UserId("usr_1")):
            got.append(machines)

    try:
        # A frozen event loop would never reach this deadline's check: the test would hang.
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watch)
                for _ in range(50):
                    ticks += 1
                    await anyio.sleep(0.01)
                # Calls still run (and time out) while the child waits.
                with pytest.raises(BackendUnavailable):
                    await backend.count_users()
                await backend.close()
    finally:
        await backend.close()
    assert (got, ticks) == ([], 50)

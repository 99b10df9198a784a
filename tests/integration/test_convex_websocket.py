"""The WebSocket transport (``convex.ConvexClient``): a fake client, and the real one unreachable.

No Convex deployment can run here, so the official client's side is a
hand-written fake with the same methods and errors; the real client is only
pointed at a closed loopback port.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from convex import ConvexError

from orchestrator.adapters.convex import ClientTransport, ConvexBackend, open_convex_backend
from orchestrator.domain.errors import AuthenticationFailed, BackendUnavailable, NotFound
from orchestrator.domain.ids import MachineId, MachineToken, UserId

pytestmark = pytest.mark.anyio

MACHINE = {
    "machineId": "mch_1",
    "userId": "usr_1",
    "name": "laptop",
    "status": "online",
    "createdAt": 1.0,
    "lastHeartbeat": 2.0,
    "rootDirectory": "/srv",
}


class FakeSubscription:
    """Yields the values pushed to it, like ``QuerySubscription`` (async-iterable)."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.changed = anyio.Event()
        self.unsubscribed = False

    def push(self, value: Any) -> None:
        self.values.append(value)
        self.changed.set()

    def __aiter__(self) -> FakeSubscription:
        return self

    async def __anext__(self) -> Any:
        while not self.values:
            self.changed = anyio.Event()
            await self.changed.wait()
        value = self.values.pop(0)
        if isinstance(value, ConvexError):
            raise value
        return value

    def unsubscribe(self) -> None:
        self.unsubscribed = True


class FakeConvexClient:
    """The methods of ``convex.ConvexClient`` the transport uses, answering from a table."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: dict[str, Any] = {}
        self.calls: list[tuple[str, dict[str, Any], str]] = []
        self.subscriptions: list[FakeSubscription] = []

    def _answer(self, name: str, args: dict[str, Any]) -> Any:
        self.calls.append((name, args, threading.current_thread().name))
        answer = self.answers[name]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    query = mutation = action = _answer

    def subscribe(self, name: str, args: dict[str, Any]) -> FakeSubscription:
        subscription = FakeSubscription()
        self.subscriptions.append(subscription)
        return subscription


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeConvexClient, ConvexBackend]]:
    clients: list[FakeConvexClient] = []

    def factory(url: str) -> Any:
        clients.append(FakeConvexClient(url))
        return clients[-1]

    backend = ConvexBackend(ClientTransport("https://x.convex.cloud/", client_factory=factory))
    try:
        yield clients[0], backend
    finally:
        await backend.close()


async def test_calls_run_off_the_event_loop_and_map_errors(
    fake: tuple[FakeConvexClient, ConvexBackend],
) -> None:
    """Blocking client calls run in a worker thread; ConvexErrors become domain errors."""
    client, backend = fake
    client.answers["machines:heartbeat"] = MACHINE
    machine = await backend.heartbeat(MachineToken(MachineId("mch_1"), "sec_1"))
    assert (machine.machine_id, machine.last_heartbeat is not None) == ("mch_1", True)
    name, args, thread = client.calls[-1]
    assert (name, args) == ("machines:heartbeat", {"machineId": "mch_1", "machineSecret": "sec_1"})
    assert thread != threading.current_thread().name
    client.answers["accounts:get"] = ConvexError(
        "x", {"kind": "NotFound", "message": "No such user."}
    )
    with pytest.raises(NotFound, match=r"^No such user\.$"):
        await backend.get_user(UserId("usr_x"))
    client.answers["accounts:count"] = Exception("channel closed")
    with pytest.raises(BackendUnavailable, match="npx convex deploy"):
        await backend.count_users()


async def test_subscriptions_yield_changes_only_and_end_on_close(
    fake: tuple[FakeConvexClient, ConvexBackend],
) -> None:
    """A subscription yields each different value; closing the backend ends it."""
    client, backend = fake
    updates = backend.watch_own_workers(MachineToken(MachineId("mch_1"), "sec_1"))
    got: list[object] = []

    async def consume() -> None:
        async for workers in updates:
            got.append(workers)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume)
        await anyio.wait_all_tasks_blocked()
        [subscription] = client.subscriptions
        for _ in range(3):
            subscription.push([])
        await anyio.wait_all_tasks_blocked()
        assert got == [[]]
        await backend.close()
    assert subscription.unsubscribed


async def test_subscription_errors_are_domain_errors(
    fake: tuple[FakeConvexClient, ConvexBackend],
) -> None:
    """A query that fails in a subscription raises the domain error from the iterator."""
    client, backend = fake
    updates = backend.watch_machines(UserId("usr_1"))
    async with anyio.create_task_group() as tasks:

        async def push() -> None:
            await anyio.wait_all_tasks_blocked()
            client.subscriptions[0].push(
                ConvexError("x", {"kind": "AuthenticationFailed", "message": "Invalid token"})
            )

        tasks.start_soon(push)
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await anext(updates)
    await updates.aclose()


async def test_the_real_client_reports_an_unreachable_deployment() -> None:
    """The official client pointed at a closed port fails as BackendUnavailable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = open_convex_backend(f"http://127.0.0.1:{port}", timeout=10)
    try:
        with pytest.raises(BackendUnavailable):
            await backend.count_users()
    finally:
        await backend.close()

"""The WebSocket transport: subscriptions from a child process, calls over the HTTP API.

No Convex deployment can run here. The child runs either the official
``convex.ConvexClient`` against the harness's stand-in for Convex's sync protocol
(``backend_convex/test-harness/sync.mjs``, written from the protocol's message
shapes, not Convex's server) or a polling stand-in for the client
(``tests/contract/convex_stand_in_client.py``); the child process, its pipe and
the parent's side are real either way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from orchestrator.adapters.convex import ClientTransport, ConvexBackend
from orchestrator.domain.errors import AuthenticationFailed, BackendUnavailable
from orchestrator.domain.ids import MachineId, MachineToken
from orchestrator.domain.model import MachineSummary
from tests.contract.convex_harness import ConvexHarness, unavailable_reason
from tests.contract.convex_stand_in_client import FACTORY
from tests.integration.harness import unreachable_convex

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

if reason := unavailable_reason():
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(params=["official-client", "polling-stand-in"])
async def backend(
    harness: ConvexHarness, request: pytest.FixtureRequest
) -> AsyncIterator[ConvexBackend]:
    if request.param == "official-client":
        transport = ClientTransport(harness.new_deployment(sync=True), timeout=10)
    else:
        transport = ClientTransport(harness.new_deployment(), timeout=10, client_factory=FACTORY)
    created = ConvexBackend(transport, server_secret=harness.server_secret)
    try:
        yield created
    finally:
        await created.close()


async def test_subscriptions_yield_changes_only_and_end_on_close(backend: ConvexBackend) -> None:
    """A subscription yields the current value, then each different one; close ends it."""
    alice = (await backend.create_user("alice", "hash")).user_id
    got: list[list[MachineSummary]] = []
    first = anyio.Event()
    second = anyio.Event()

    async def consume() -> None:
        async for machines in backend.watch_machines(alice):
            got.append(machines)
            (second if first.is_set() else first).set()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume)
            await first.wait()
            await backend.create_machine(alice, "laptop")
            await second.wait()
            await anyio.sleep(0.2)  # many polls of the same value: none is yielded
            await backend.close()
    assert [[m.machine.name for m in machines] for machines in got] == [[], ["laptop"]]


async def test_subscription_errors_are_domain_errors(backend: ConvexBackend) -> None:
    """A query refused in the child's subscription raises the domain error in the parent."""
    updates = backend.watch_own_workers(MachineToken(MachineId("mch_x"), "sec_x"))
    with anyio.fail_after(30), pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
        await anext(updates)
    await updates.aclose()


async def test_a_dead_child_is_backend_unavailable_and_replaced(
    harness: ConvexHarness,
) -> None:
    """If the child process dies, watches end as BackendUnavailable; the next watch restarts it."""
    transport = ClientTransport(harness.new_deployment(), timeout=10, client_factory=FACTORY)
    backend = ConvexBackend(transport, server_secret=harness.server_secret)
    try:
        alice = (await backend.create_user("alice", "hash")).user_id
        updates = backend.watch_machines(alice)
        with anyio.fail_after(30):
            assert await anext(updates) == []
            child = transport._subscriptions._process
            assert child is not None
            child.kill()
            with pytest.raises(BackendUnavailable, match="was lost"):
                await anext(updates)
            again = backend.watch_machines(alice)
            assert await anext(again) == []
            await again.aclose()
        assert transport._subscriptions._process is not child
    finally:
        await backend.close()


async def test_the_real_client_reports_an_unreachable_deployment() -> None:
    """Pointed at a closed port, the websocket transport fails as BackendUnavailable."""
    async with unreachable_convex("websocket", timeout=10) as (backend, _):
        with pytest.raises(BackendUnavailable):
            await backend.count_users()

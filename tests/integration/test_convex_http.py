"""The Convex adapter over HTTP against the loopback harness: deployment secret, API errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrator.adapters.convex import ConvexBackend, HttpTransport
from orchestrator.domain.errors import AuthenticationFailed, BackendUnavailable, NotFound
from orchestrator.domain.ids import MachineToken, UserId
from tests.contract.convex_harness import ConvexHarness, running_harness, unavailable_reason
from tests.integration.harness import unreachable_convex

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

if reason := unavailable_reason():
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="module")
def unconfigured() -> Iterator[ConvexHarness]:
    """A deployment on which ORCHESTRATOR_SERVER_SECRET was never set."""
    with running_harness(server_secret=None) as started:
        yield started


def connect(url: str, server_secret: str | None) -> ConvexBackend:
    return ConvexBackend(
        HttpTransport(url, timeout=10, poll_interval=0.02), server_secret=server_secret
    )


@pytest.fixture
def deployment(harness: ConvexHarness) -> str:
    """The URL of a fresh deployment."""
    return harness.new_deployment()


@pytest.fixture
async def backend(harness: ConvexHarness, deployment: str) -> AsyncIterator[ConvexBackend]:
    created = connect(deployment, harness.server_secret)
    try:
        yield created
    finally:
        await created.close()


async def test_a_wrong_deployment_secret_is_refused(
    deployment: str, backend: ConvexBackend
) -> None:
    """A web server with the wrong secret gets AuthenticationFailed and changes nothing."""
    wrong = connect(deployment, "not-the-secret")
    try:
        with pytest.raises(AuthenticationFailed, match=r"^The server secret is wrong\."):
            await wrong.create_user("mallory", "hash")
        with pytest.raises(AuthenticationFailed, match=r"^The server secret is wrong\."):
            await wrong.list_machines(UserId("usr_x"))
    finally:
        await wrong.close()
    assert await backend.count_users() == 0


async def test_an_unconfigured_deployment_refuses_the_web_server(
    unconfigured: ConvexHarness,
) -> None:
    """Without ORCHESTRATOR_SERVER_SECRET on the deployment, every server call is refused."""
    for secret in (None, "any-secret-at-all-0123456789abcdef"):
        backend = connect(unconfigured.new_deployment(), secret)
        try:
            with pytest.raises(AuthenticationFailed, match="has no ORCHESTRATOR_SERVER_SECRET"):
                await backend.count_users()
        finally:
            await backend.close()


async def test_a_machine_needs_only_its_token(deployment: str, backend: ConvexBackend) -> None:
    """A machine process's backend carries no server secret: its token is its credential."""
    alice = (await backend.create_user("alice", "hash")).user_id
    machine, token = await backend.create_machine(alice, "laptop")
    as_machine = connect(deployment, None)
    try:
        online = await as_machine.go_online(token, "/srv/code")
        assert (online.machine_id, online.status) == (machine.machine_id, "online")
        with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
            await as_machine.heartbeat(MachineToken(machine.machine_id, "sec_wrong"))
        with pytest.raises(AuthenticationFailed):
            await as_machine.list_machines(alice)
    finally:
        await as_machine.close()


async def test_a_missing_function_says_to_deploy(harness: ConvexHarness) -> None:
    """A deployment without these functions answers 404; the adapter says what to do."""
    transport = HttpTransport(harness.new_deployment(), timeout=10)
    try:
        with pytest.raises(BackendUnavailable, match=r"npx convex deploy"):
            await transport.call("query", "machines:nope", {})
        # Internal functions are not reachable over the API, as on a real deployment.
        with pytest.raises(BackendUnavailable, match=r"npx convex deploy"):
            await transport.call("mutation", "machines:sweepStale", {})
    finally:
        await transport.close()


async def test_an_unreachable_deployment_is_backend_unavailable() -> None:
    """Nothing listening at CONVEX_URL: BackendUnavailable naming the URL, not a traceback."""
    async with unreachable_convex("http", timeout=2) as (backend, port):
        with pytest.raises(BackendUnavailable, match=rf"127\.0\.0\.1:{port} cannot be reached"):
            await backend.get_user(UserId("usr_x"))


async def test_unknown_records_are_not_found(backend: ConvexBackend) -> None:
    """IDs that were never issued are NotFound with the embedded backend's sentence."""
    with pytest.raises(NotFound, match=r"^No such user\.$"):
        await backend.get_user(UserId("usr_missing"))

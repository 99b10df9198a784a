"""RemoteMachineBackend against the real app on a loopback port with the SQLite backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.application import machines
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    InvalidTransition,
    NotFound,
    OrchestratorError,
)
from orchestrator.domain.ids import MachineToken, UserId, WorkerId
from orchestrator.domain.model import MachineStatus, Worker, WorkerStatus
from orchestrator.entrypoints.settings import MachineSettings
from tests.integration.test_remote_support import LiveServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _machine(server: LiveServer) -> tuple[UserId, MachineToken]:
    user = await server.backend.create_user("alice", "not-a-real-hash")
    _, token = await server.backend.create_machine(user.user_id, "laptop")
    return user.user_id, token


async def test_full_machine_flow(
    server: LiveServer, remote: RemoteMachineBackend, tmp_path: Path
) -> None:
    """A machine authenticates, goes online, registers and runs a worker, and goes offline."""
    user, token = await _machine(server)
    machine = await remote.authenticate(token)
    assert machine.machine_id == token.machine_id
    online = await remote.go_online(token, str(tmp_path))
    assert online.status is MachineStatus.ONLINE
    assert (await remote.heartbeat(token)).last_heartbeat is not None

    (tmp_path / "repo").mkdir()
    worker_token = await server.backend.issue_worker_token(user, token.machine_id)
    worker = await machines.register_worker(
        remote, token, worker_token, tmp_path, tmp_path / "repo", "api"
    )
    assert (worker.directory, worker.name, worker.status) == (
        "repo",
        "api",
        WorkerStatus.PENDING_AUTHORIZATION,
    )
    await server.backend.approve_worker(user, worker.worker_id)
    beat = await remote.worker_heartbeat(token, worker.worker_id)
    assert beat.status is WorkerStatus.ONLINE
    with_models = await remote.update_worker_models(token, worker.worker_id, ["fake/a"])
    assert with_models.models == ("fake/a",)
    with_models = await remote.update_worker_agents(
        token, worker.worker_id, AgentCatalog(("plan",), ("review",))
    )
    assert (with_models.agents, with_models.commands) == (("plan",), ("review",))
    assert await remote.list_own_workers(token) == [with_models]
    assert (await remote.worker_offline(token, worker.worker_id)).status is WorkerStatus.OFFLINE
    await remote.go_offline(token)
    assert (await server.backend.get_machine(user, token.machine_id)).status is (
        MachineStatus.OFFLINE
    )


async def test_a_burst_of_calls_stays_under_the_servers_connection_cap(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """100 calls at once all succeed: the client stays under the server's cap per address."""
    _, token = await _machine(server)
    await remote.go_online(token, "/")
    results: list[MachineStatus] = []

    async def beat() -> None:
        results.append((await remote.heartbeat(token)).status)

    async with anyio.create_task_group() as tasks:
        for _ in range(100):
            tasks.start_soon(beat)
    assert results == [MachineStatus.ONLINE] * 100


async def _direct_error(call: object) -> OrchestratorError:
    with pytest.raises(OrchestratorError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_errors_arrive_as_the_same_class_and_message(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """Errors the backend raises reach the client as the same class with the same sentence."""
    user, token = await _machine(server)
    wrong = MachineToken(token.machine_id, "sec_wrong")
    worker_token = await server.backend.issue_worker_token(user, token.machine_id)
    pending = await server.backend.register_worker(token, worker_token, "x", None)
    cases = [
        (remote.authenticate(wrong), server.backend.authenticate(wrong), AuthenticationFailed),
        (
            remote.worker_heartbeat(token, pending.worker_id),
            server.backend.worker_heartbeat(token, pending.worker_id),
            InvalidTransition,
        ),
        (
            remote.worker_offline(token, WorkerId("wrk_missing")),
            server.backend.worker_offline(token, WorkerId("wrk_missing")),
            NotFound,
        ),
    ]
    for over_http, direct, expected in cases:
        remote_error = await _direct_error(over_http)
        direct_error = await _direct_error(direct)
        assert type(remote_error) is type(direct_error) is expected
        assert remote_error.message == direct_error.message
    assert (await _direct_error(remote.authenticate(wrong))).message == "Invalid token"


async def test_server_down_is_backend_unavailable(server: LiveServer) -> None:
    """With no server listening, every call raises BackendUnavailable with what to do."""
    await server.stop()
    async with RemoteMachineBackend(server.url) as remote:
        with pytest.raises(BackendUnavailable) as caught:
            await remote.heartbeat(MachineToken.parse("mch_1:sec_1"))
    assert caught.value.message == (
        f"Cannot reach the server at {server.url}. Is `orchestrator serve` running?"
    )


async def test_a_silent_server_times_out() -> None:
    """A server that accepts but never answers raises BackendUnavailable after the timeout."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await anyio.sleep(30)

    silent = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        remote = RemoteMachineBackend(
            f"http://127.0.0.1:{port}", request_timeout=timedelta(milliseconds=200)
        )
        async with remote:
            with anyio.fail_after(5), pytest.raises(BackendUnavailable, match="did not answer"):
                await remote.heartbeat(MachineToken.parse("mch_1:sec_1"))
    finally:
        silent.close()


async def test_subscription_survives_a_server_restart(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """A waiting subscription rides out a restart on the same port and yields the fresh list."""
    user, token = await _machine(server)
    updates = remote.watch_own_workers(token)
    received: list[list[Worker]] = []

    async def wait_for_next() -> None:
        received.append(await anext(updates))

    with anyio.fail_after(10):
        assert await anext(updates) == []
        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_for_next)
            await server.stop()
            added = await server.backend.add_worker(user, token.machine_id, "while-down", None)
            await anyio.sleep(0.3)  # the client meanwhile retries against the closed port
            await server.start()
        assert received == [[added]]
        second = await server.backend.add_worker(user, token.machine_id, "after", None)
        assert await anext(updates) == [added, second]
    await updates.aclose()  # type: ignore[attr-defined]


async def test_subscription_with_a_wrong_token_raises(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """A subscription refused for a wrong token raises instead of retrying forever."""
    _, token = await _machine(server)
    updates = remote.watch_own_workers(MachineToken(token.machine_id, "sec_wrong"))
    with anyio.fail_after(10), pytest.raises(AuthenticationFailed, match="Invalid token"):
        await anext(updates)


async def test_settings_give_the_timeouts(server: LiveServer) -> None:
    """MachineSettings (or anything with its two timeouts) configures the client."""
    settings = MachineSettings(
        server_url=server.url,
        request_timeout=timedelta(seconds=3),
        max_backoff=timedelta(seconds=4),
    )
    async with RemoteMachineBackend(settings.server_url, settings) as remote:
        assert (remote.request_timeout, remote.max_backoff) == (
            timedelta(seconds=3),
            timedelta(seconds=4),
        )
        _, token = await _machine(server)
        assert (await remote.authenticate(token)).machine_id == token.machine_id

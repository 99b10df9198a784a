"""A machine whose WebSocket closes is marked offline after a short grace, unless it returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.domain.chat import GONE_REASON, MessageStatus
from orchestrator.domain.errors import Conflict
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.model import MachineStatus, WorkerStatus
from orchestrator.entrypoints.web.machine_api import PRESENCE
from tests.unit.test_web_support import Harness, online_worker, running_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(tmp_path, disconnect_grace=timedelta(milliseconds=50)) as harness:
        yield harness


@pytest.fixture
async def patient(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_app(tmp_path, disconnect_grace=timedelta(hours=1)) as harness:
        yield harness


async def _online(web: Harness) -> MachineToken:
    machine, token = await web.machine_of()
    await web.backend.go_online(token, "/home/alice")
    worker_token = await web.backend.issue_worker_token(machine.user_id, machine.machine_id)
    worker = await web.backend.register_worker(token, worker_token, "app", None)
    await web.backend.approve_worker(machine.user_id, worker.worker_id)
    await web.backend.worker_heartbeat(token, worker.worker_id)
    return token


async def test_closed_websocket_marks_machine_and_workers_offline(quick: Harness) -> None:
    """With its only WebSocket closed, the machine and its workers go offline after the grace."""
    token = await _online(quick)
    headers = {"Authorization": f"Bearer {token}"}
    async with quick.client.ws_connect("/api/machine/ws", headers=headers):
        assert (await quick.backend.authenticate(token)).status is MachineStatus.ONLINE
    with anyio.fail_after(5):
        while (await quick.backend.authenticate(token)).status is not MachineStatus.OFFLINE:
            await anyio.sleep(0.02)
    workers = await quick.backend.list_own_workers(token)
    assert [w.status for w in workers] == [WorkerStatus.OFFLINE]


async def test_reconnect_within_grace_keeps_machine_online(patient: Harness) -> None:
    """A machine that reconnects within the grace has its pending disconnect called off."""
    token = await _online(patient)
    headers = {"Authorization": f"Bearer {token}"}
    presence = patient.app[PRESENCE]
    async with patient.client.ws_connect("/api/machine/ws", headers=headers):
        pass
    with anyio.fail_after(5):
        while token.machine_id not in presence.pending:
            await anyio.sleep(0.01)
    async with patient.client.ws_connect("/api/machine/ws", headers=headers) as ws:
        await ws.send_json({"id": 1, "subscribe": "own_workers"})
        await ws.receive_json()
        assert presence.pending == {}
        assert (await patient.backend.authenticate(token)).status is MachineStatus.ONLINE


async def test_second_connection_keeps_machine_online(patient: Harness) -> None:
    """Closing one of two WebSockets of a machine schedules nothing."""
    token = await _online(patient)
    headers = {"Authorization": f"Bearer {token}"}
    presence = patient.app[PRESENCE]
    async with patient.client.ws_connect("/api/machine/ws", headers=headers) as first:
        async with patient.client.ws_connect("/api/machine/ws", headers=headers) as second:
            await second.send_json({"id": 1, "subscribe": "own_workers"})
            await second.receive_json()
        await first.send_json({"id": 2, "subscribe": "own_workers"})
        await first.receive_json()
        assert presence.pending == {}
        assert presence.open == {token.machine_id: 1}


async def test_streaming_reply_of_a_gone_machine_ends_interrupted(quick: Harness) -> None:
    """The streaming reply of a machine whose socket closed ends interrupted, its text kept."""
    chat = await online_worker(quick)
    backend, token = quick.backend, chat.token
    session = await chat.start()
    sent = await backend.send_message(chat.user, session.chat_session_id, "hello")
    reply = await backend.claim_message(token, sent.message_id)
    await backend.append_chunk(token, reply.message_id, "Half an ans")
    headers = {"Authorization": f"Bearer {token}"}
    async with quick.client.ws_connect("/api/machine/ws", headers=headers):
        pass
    with anyio.fail_after(5):
        while (await backend.authenticate(token)).status is not MachineStatus.OFFLINE:
            await anyio.sleep(0.02)
    messages = await backend.list_messages(chat.user, session.chat_session_id)
    ended = next(m for m in messages if m.message_id == reply.message_id)
    assert (ended.status, ended.content) == (MessageStatus.INTERRUPTED, "Half an ans")
    assert ended.error == GONE_REASON
    with pytest.raises(Conflict):
        await backend.end_reply(token, reply.message_id, MessageStatus.INTERRUPTED, "again")

"""Live pushes: SSE to the browser and the machine WebSocket."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import anyio
import pytest

from orchestrator.domain.model import WorkerStatus
from tests.unit.test_web_support import Harness

pytestmark = pytest.mark.anyio


async def _next_event(response: aiohttp.ClientResponse) -> tuple[str, Any]:
    event, data = "", ""
    with anyio.fail_after(5):
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = line.removeprefix("data: ")
            elif line == "" and event:
                return event, json.loads(data)


async def _next_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    with anyio.fail_after(5):
        frame: dict[str, Any] = await ws.receive_json()
    return frame


async def test_sse_pushes_machine_list_changes(web: Harness) -> None:
    """The browser's event stream sends the machine list at once and again after a change."""
    csrf = await web.sign_in()
    async with web.client.get("/api/events") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert await _next_event(stream) == ("machines", {"machines": []})
        created = await web.client.post(
            "/api/machines", json={"name": "desk"}, headers={"X-CSRF-Token": csrf}
        )
        assert created.status == 201
        event, data = await _next_event(stream)
        assert event == "machines"
        assert [s["machine"]["name"] for s in data["machines"]] == ["desk"]


async def test_sse_pushes_one_machines_workers(web: Harness) -> None:
    """With ?machine_id= the stream also sends that machine's workers when they change."""
    await web.sign_in()
    machine, _ = await web.machine_of()
    user = machine.user_id
    async with web.client.get(f"/api/events?machine_id={machine.machine_id}") as stream:
        seen = dict([await _next_event(stream), await _next_event(stream)])
        assert seen["workers"] == {"machine_id": machine.machine_id, "workers": []}
        await web.backend.add_worker(user, machine.machine_id, "repo", None)
        while True:
            event, data = await _next_event(stream)
            if event == "workers":
                break
        assert [w["directory"] for w in data["workers"]] == ["repo"]


async def test_sse_ends_with_an_error_event_when_the_machine_goes(web: Harness) -> None:
    """If the watched machine is deleted, the stream sends one error event and ends."""
    await web.sign_in()
    machine, _ = await web.machine_of()
    async with web.client.get(f"/api/events?machine_id={machine.machine_id}") as stream:
        await _next_event(stream)
        await _next_event(stream)
        await web.backend.delete_machine(machine.user_id, machine.machine_id)
        events = []
        with anyio.fail_after(5):
            while (event := await _next_event(stream))[0] != "error":
                events.append(event)
        assert event[1]["type"] == "NotFound"


async def test_machine_websocket_pushes_own_workers(web: Harness) -> None:
    """A machine subscribed to own_workers gets its workers at once and after each change."""
    machine, token = await web.machine_of()
    headers = {"Authorization": f"Bearer {token}"}
    async with web.client.ws_connect("/api/machine/ws", headers=headers) as ws:
        await ws.send_json({"id": 7, "subscribe": "own_workers"})
        assert await _next_frame(ws) == {"id": 7, "value": []}
        await web.backend.add_worker(machine.user_id, machine.machine_id, "proj", "p")
        frame = await _next_frame(ws)
        assert frame["id"] == 7
        assert [(w["directory"], w["status"]) for w in frame["value"]] == [
            ("proj", WorkerStatus.READY.value)
        ]


async def test_machine_websocket_reports_bad_requests_per_id(web: Harness) -> None:
    """Unknown subscriptions, bad JSON and duplicate ids get an error frame; the socket stays."""
    _, token = await web.machine_of()
    headers = {"Authorization": f"Bearer {token}"}
    async with web.client.ws_connect("/api/machine/ws", headers=headers) as ws:
        await ws.send_json({"id": 1, "subscribe": "chat_messages"})
        unknown = await _next_frame(ws)
        assert unknown["id"] == 1
        assert unknown["type"] == "InvalidInput"
        assert "own_workers" in unknown["error"]
        await ws.send_str("{oops")
        assert (await _next_frame(ws))["error"] == "The message is not valid JSON."
        await ws.send_json({"subscribe": "own_workers"})
        assert (await _next_frame(ws))["error"] == "Every message needs an integer 'id'."
        await ws.send_json({"id": 2, "subscribe": "own_workers"})
        assert await _next_frame(ws) == {"id": 2, "value": []}
        await ws.send_json({"id": 2, "subscribe": "own_workers"})
        assert (await _next_frame(ws))["error"] == "Subscription 2 is already open."
        await ws.send_json({"id": 2, "unsubscribe": True})
        await ws.send_json({"id": 2, "subscribe": "own_workers"})
        assert await _next_frame(ws) == {"id": 2, "value": []}


async def test_machine_websocket_refuses_a_wrong_token(web: Harness) -> None:
    """The WebSocket handshake with a wrong secret is refused with 401."""
    machine, _ = await web.machine_of()
    headers = {"Authorization": f"Bearer {machine.machine_id}:sec_wrong"}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await web.client.ws_connect("/api/machine/ws", headers=headers)
    assert refused.value.status == 401


async def test_machine_websocket_errors_when_the_machine_is_deleted(web: Harness) -> None:
    """Deleting the machine ends its subscription with an error frame naming the cause."""
    machine, token = await web.machine_of()
    headers = {"Authorization": f"Bearer {token}"}
    async with web.client.ws_connect("/api/machine/ws", headers=headers) as ws:
        await ws.send_json({"id": 1, "subscribe": "own_workers"})
        await _next_frame(ws)
        await web.backend.delete_machine(machine.user_id, machine.machine_id)
        frame = await _next_frame(ws)
        assert frame["id"] == 1
        assert frame["type"] == "AuthenticationFailed"

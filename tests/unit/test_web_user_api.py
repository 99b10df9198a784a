"""The browser's JSON API: machines, workers, validation, ownership and errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.domain.ids import UserId, WorkerToken
from orchestrator.domain.model import MachineStatus, WorkerStatus
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds
from tests.unit.test_web_support import (
    Harness,
    running_app,
)

pytestmark = pytest.mark.anyio


async def _user_id(web: Harness, username: str = "alice") -> UserId:
    found = await web.backend.find_user(username)
    assert found is not None
    return found[0].user_id


async def test_machine_lifecycle(web: Harness) -> None:
    """Create (token shown once, with the command), list, get and delete a machine."""
    csrf = await web.sign_in()
    headers = {"X-CSRF-Token": csrf}
    created = await web.client.post("/api/machines", json={"name": " laptop "}, headers=headers)
    assert created.status == 201
    body = await created.json()
    machine_id, token = body["machine"]["machine_id"], body["token"]
    assert body["machine"]["name"] == "laptop"
    assert body["machine"]["status"] == "offline"
    assert token.startswith(f"{machine_id}:")
    assert body["command"] == "orchestrator worker start --server http://127.0.0.1:8080"

    listed = await (await web.client.get("/api/machines")).json()
    assert [s["machine"]["machine_id"] for s in listed["machines"]] == [machine_id]
    assert listed["machines"][0]["workers"] == {
        "pending_authorization": 0,
        "ready": 0,
        "online": 0,
        "offline": 0,
    }
    assert "token" not in str(listed)
    got = await (await web.client.get(f"/api/machines/{machine_id}")).json()
    assert got["machine"]["created_at"].endswith("+00:00")

    deleted = await web.client.delete(f"/api/machines/{machine_id}", headers=headers)
    assert deleted.status == 204
    gone = await web.client.get(f"/api/machines/{machine_id}")
    assert gone.status == 404
    assert (await gone.json())["type"] == "NotFound"


async def test_workers_add_list_and_remove(web: Harness) -> None:
    """Add a ready worker on a folder, list it, then remove it."""
    csrf = await web.sign_in()
    headers = {"X-CSRF-Token": csrf}
    machine, _ = await web.machine_of()
    base = f"/api/machines/{machine.machine_id}/workers"
    added = await web.client.post(
        base, json={"directory": "./src/app", "name": "api"}, headers=headers
    )
    assert added.status == 201
    worker = (await added.json())["worker"]
    assert (worker["directory"], worker["name"], worker["status"]) == ("src/app", "api", "ready")
    listed = await (await web.client.get(base)).json()
    assert [w["worker_id"] for w in listed["workers"]] == [worker["worker_id"]]
    removed = await web.client.delete(f"/api/workers/{worker['worker_id']}", headers=headers)
    assert removed.status == 204
    assert (await (await web.client.get(base)).json())["workers"] == []


async def test_pending_workers_are_approved_or_rejected(web: Harness) -> None:
    """Workers registered with a worker token stay pending until approved or rejected."""
    csrf = await web.sign_in()
    headers = {"X-CSRF-Token": csrf}
    machine, token = await web.machine_of()
    tokens = f"/api/machines/{machine.machine_id}/worker-tokens"
    first = (await (await web.client.post(tokens, headers=headers)).json())["worker_token"]
    second = (await (await web.client.post(tokens, headers=headers)).json())["worker_token"]
    assert first.startswith(f"machine_{machine.machine_id}:worker_")
    a = await web.backend.register_worker(token, WorkerToken.parse(first), "a", None)
    b = await web.backend.register_worker(token, WorkerToken.parse(second), "b", None)
    pending = await (await web.client.get("/api/workers/pending")).json()
    assert {w["worker_id"] for w in pending["workers"]} == {a.worker_id, b.worker_id}

    approved = await web.client.post(f"/api/workers/{a.worker_id}/approve", headers=headers)
    assert approved.status == 200
    assert (await approved.json())["worker"]["status"] == WorkerStatus.READY.value
    rejected = await web.client.post(f"/api/workers/{b.worker_id}/reject", headers=headers)
    assert rejected.status == 204
    assert (await (await web.client.get("/api/workers/pending")).json())["workers"] == []
    again = await web.client.post(f"/api/workers/{a.worker_id}/approve", headers=headers)
    assert again.status == 409


async def test_another_users_records_are_not_found(web: Harness) -> None:
    """Bob's machine and worker IDs answer 404 to Alice on every endpoint."""
    machine, _ = await web.machine_of("bob")
    bob = await _user_id(web, "bob")
    worker = await web.backend.add_worker(bob, machine.machine_id, "x", None)
    csrf = await web.sign_in(username="alice")
    headers = {"X-CSRF-Token": csrf}
    m, w = machine.machine_id, worker.worker_id
    attempts = [
        ("GET", f"/api/machines/{m}", None),
        ("DELETE", f"/api/machines/{m}", None),
        ("GET", f"/api/machines/{m}/workers", None),
        ("POST", f"/api/machines/{m}/workers", {"directory": "y"}),
        ("POST", f"/api/machines/{m}/worker-tokens", None),
        ("POST", f"/api/workers/{w}/approve", None),
        ("POST", f"/api/workers/{w}/reject", None),
        ("DELETE", f"/api/workers/{w}", None),
        ("GET", f"/api/events?machine_id={m}", None),
    ]
    for method, path, body in attempts:
        response = await web.client.request(method, path, json=body, headers=headers)
        assert response.status == 404, (method, path)
    assert machine.machine_id in web.backend.machines
    assert worker.worker_id in web.backend.workers


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({}, "The field 'directory' is required."),
        ({"directory": 5}, "The field 'directory' must be a string."),
        ({"directory": "a", "name": ["x"]}, "The field 'name' must be a string."),
        ({"directory": "../etc"}, "The path must not contain '..'."),
        ({"directory": "/etc"}, "Use a path relative to the machine's root, not an absolute one."),
    ],
)
async def test_bad_worker_fields_get_one_sentence(
    web: Harness, body: dict[str, object], sentence: str
) -> None:
    """Missing fields, wrong types and unsafe paths get 400 with one sentence."""
    csrf = await web.sign_in()
    machine, _ = await web.machine_of()
    response = await web.client.post(
        f"/api/machines/{machine.machine_id}/workers", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 400
    assert (await response.json())["error"] == sentence


@pytest.mark.parametrize(
    ("data", "content_type", "sentence"),
    [
        ("{not json", "application/json", "The request body is not valid JSON."),
        ("[1, 2]", "application/json", "The request body must be a JSON object."),
        (
            '{"name": "x"}',
            "text/plain",
            "Send the request body as JSON (Content-Type: application/json).",
        ),
        ('{"name": 3}', "application/json", "The field 'name' must be a string."),
        ('{"name": ""}', "application/json", "Machine name must not be empty."),
    ],
)
async def test_bad_bodies_are_refused(
    web: Harness, data: str, content_type: str, sentence: str
) -> None:
    """Malformed, non-object, non-JSON and wrongly typed bodies get 400 and change nothing."""
    csrf = await web.sign_in()
    response = await web.client.post(
        "/api/machines",
        data=data,
        headers={"X-CSRF-Token": csrf, "Content-Type": content_type},
    )
    assert response.status == 400
    assert (await response.json())["error"] == sentence
    assert web.backend.machines == {}


async def test_oversized_body_is_refused(web: Harness) -> None:
    """A body over max_body_bytes gets 413 with a sentence naming the limit."""
    csrf = await web.sign_in()
    response = await web.client.post(
        "/api/machines", json={"name": "x" * 5000}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 413
    body = await response.json()
    assert body == {
        "error": "The request body is larger than the limit of 4096 bytes.",
        "type": "PayloadTooLarge",
    }


async def test_unknown_endpoint_is_json_404(web: Harness) -> None:
    """An unknown API path answers 404 as JSON."""
    response = await web.client.get("/api/nothing-here")
    assert response.status == 404
    assert (await response.json())["error"] == "There is no such page or endpoint."


class _BrokenBackend(InMemoryBackend):
    async def list_machines(self, user: UserId) -> list[object]:  # type: ignore[override]
        raise RuntimeError("disk on fire")


async def test_unexpected_errors_show_no_traceback(tmp_path: Path) -> None:
    """A bug in the server answers 500 with a sentence, never a traceback."""
    backend = _BrokenBackend(clock=FakeClock(), ids=SequentialIds(), hasher=PlainHasher())
    async with running_app(tmp_path, backend=backend) as web:
        await web.sign_in()
        response = await web.client.get("/api/machines")
        assert response.status == 500
        text = await response.text()
        assert "disk on fire" not in text
        assert "Traceback" not in text
        assert (await response.json())["error"].startswith("Something went wrong")


async def test_sweeper_marks_silent_machines_offline(web: Harness) -> None:
    """A machine whose heartbeat is older than stale_after is set offline by the sweeper."""
    machine, token = await web.machine_of()
    await web.backend.go_online(token, "/home/alice")
    assert web.backend.machines[machine.machine_id].status is MachineStatus.ONLINE
    web.clock.advance(timedelta(minutes=5))
    for _ in range(200):
        if web.backend.machines[machine.machine_id].status is MachineStatus.OFFLINE:
            break
        await anyio.sleep(0.01)
    assert web.backend.machines[machine.machine_id].status is MachineStatus.OFFLINE

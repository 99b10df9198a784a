"""The permission policy through the browser's API: chosen when adding, changed, bad values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.adapters.wire import converter
from orchestrator.domain.ids import MachineId, WorkerId
from orchestrator.domain.model import Worker, WorkerStatus
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from tests.unit.test_web_support import Harness

pytestmark = pytest.mark.anyio

SAFE = {"bash": "ask", "edit": "ask", "webfetch": "ask", "external_directory": "deny"}
BAD_POLICIES = [
    ("ask", "The permission policy must be an object with ask, allow or deny for each of:"),
    ({"bash": "sometimes"}, "The permission for bash must be ask, allow or deny."),
    ({"edit": None}, "The permission for edit must be ask, allow or deny."),
    ({"edit": ["ask"]}, "The permission for edit must be ask, allow or deny."),
    ({"shell": "ask"}, "The permission policy has no setting 'shell'; use bash, edit, webfetch"),
]


async def _add(web: Harness, csrf: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    """Add a worker on alice's first machine (made on the first call)."""
    machines = await (await web.client.get("/api/machines")).json()
    if machines["machines"]:
        machine_id = machines["machines"][0]["machine"]["machine_id"]
    else:
        machine_id = (await web.machine_of())[0].machine_id
    response = await web.client.post(
        f"/api/machines/{machine_id}/workers", json=body, headers={"X-CSRF-Token": csrf}
    )
    return response.status, await response.json()


async def test_a_worker_is_added_with_the_safe_policy_or_the_chosen_one(web: Harness) -> None:
    """No policy: ask/ask/ask/deny; a partial one keeps the defaults for the rest."""
    csrf = await web.sign_in()
    status, body = await _add(web, csrf, {"directory": "a"})
    assert status == 201
    assert body["worker"]["permission_policy"] == SAFE  # type: ignore[index]
    first_machine = body["worker"]["machine_id"]  # type: ignore[index]
    status, body = await _add(
        web, csrf, {"directory": "b", "permission_policy": {"bash": "allow", "webfetch": "deny"}}
    )
    assert status == 201
    assert body["worker"]["permission_policy"] == {  # type: ignore[index]
        **SAFE,
        "bash": "allow",
        "webfetch": "deny",
    }
    assert body["worker"]["machine_id"] == first_machine  # type: ignore[index]


async def test_the_policy_is_changed_later(web: Harness) -> None:
    """PUT …/permission-policy replaces the policy; the worker list shows the new one."""
    csrf = await web.sign_in()
    _, body = await _add(web, csrf, {"directory": "a"})
    worker = body["worker"]
    assert isinstance(worker, dict)
    new = {"bash": "allow", "edit": "allow", "webfetch": "allow", "external_directory": "ask"}
    response = await web.client.put(
        f"/api/workers/{worker['worker_id']}/permission-policy",
        json=new,
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    assert (await response.json())["worker"]["permission_policy"] == new
    listed = await (await web.client.get(f"/api/machines/{worker['machine_id']}/workers")).json()
    assert listed["workers"][0]["permission_policy"] == new


@pytest.mark.parametrize(("policy", "sentence"), BAD_POLICIES)
async def test_a_bad_policy_gets_one_sentence_and_adds_nothing(
    web: Harness, policy: object, sentence: str
) -> None:
    """A policy that is not ask/allow/deny per known tool: 400, one sentence, no worker."""
    csrf = await web.sign_in()
    machine, _ = await web.machine_of()
    status, body = await _add(web, csrf, {"directory": "a", "permission_policy": policy})
    assert status == 400
    assert str(body["error"]).startswith(sentence)
    listed = await (await web.client.get(f"/api/machines/{machine.machine_id}/workers")).json()
    assert listed["workers"] == []


@pytest.mark.parametrize(("policy", "sentence"), BAD_POLICIES[1:])
async def test_a_bad_change_gets_one_sentence_and_changes_nothing(
    web: Harness, policy: object, sentence: str
) -> None:
    """Changing to a bad policy: 400, one sentence, the old policy stays; others' are 404."""
    csrf = await web.sign_in()
    _, body = await _add(web, csrf, {"directory": "a"})
    worker = body["worker"]
    assert isinstance(worker, dict)
    url = f"/api/workers/{worker['worker_id']}/permission-policy"
    response = await web.client.put(url, json=policy, headers={"X-CSRF-Token": csrf})
    assert response.status == 400
    assert (await response.json())["error"].startswith(sentence)
    missing = await web.client.put(
        "/api/workers/wrk_nope/permission-policy", json=SAFE, headers={"X-CSRF-Token": csrf}
    )
    assert missing.status == 404
    listed = await (await web.client.get(f"/api/machines/{worker['machine_id']}/workers")).json()
    assert listed["workers"][0]["permission_policy"] == SAFE


def test_the_policy_crosses_the_machine_wire_intact() -> None:
    """The machine reads a worker's policy back from the wire format exactly."""
    worker = Worker(
        WorkerId("wrk_1"),
        MachineId("mch_1"),
        "app",
        WorkerStatus.READY,
        datetime(2026, 1, 1, tzinfo=UTC),
        permission_policy=PermissionPolicy(
            bash=PermissionAction.ALLOW, external_directory=PermissionAction.ASK
        ),
    )
    raw = converter.unstructure(worker)
    assert raw["permission_policy"] == {
        "bash": "allow",
        "edit": "ask",
        "webfetch": "ask",
        "external_directory": "ask",
    }
    assert converter.structure(raw, Worker) == worker

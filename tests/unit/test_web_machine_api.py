"""The machine API over HTTP: token checks, rate limits and every MachineBackend call."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domain.ids import MACHINE_TOKEN_FORMAT, MachineToken
from tests.unit.test_web_support import Client, Harness

pytestmark = pytest.mark.anyio


async def _call(
    client: Client, method: str, token: MachineToken | str, **args: object
) -> tuple[int, Any]:
    response = await client.post(
        f"/api/machine/{method}", json=args, headers={"Authorization": f"Bearer {token}"}
    )
    return response.status, await response.json()


async def test_missing_credentials_are_refused(web: Harness) -> None:
    """A call without an Authorization header gets 401 saying how to send the token."""
    response = await web.client.post("/api/machine/authenticate")
    assert response.status == 401
    assert "Authorization: Bearer" in (await response.json())["error"]


@pytest.mark.parametrize("raw", ["garbage", "a:b:c", " mch_1:sec_1", "mch_1:", "mch 1:sec"])
async def test_malformed_tokens_get_the_format_sentence(web: Harness, raw: str) -> None:
    """A token that is not <machine_id>:<machine_secret> gets 400 with the expected format."""
    status, body = await _call(web.client, "authenticate", raw)
    assert status == 400
    assert body == {"error": MACHINE_TOKEN_FORMAT, "type": "InvalidToken"}


async def test_wrong_secret_is_invalid_token(web: Harness) -> None:
    """A well-formed token with the wrong secret gets 401 "Invalid token"."""
    machine, _ = await web.machine_of()
    status, body = await _call(web.client, "heartbeat", f"{machine.machine_id}:sec_wrong")
    assert status == 401
    assert body == {"error": "Invalid token", "type": "AuthenticationFailed"}


async def test_failed_token_checks_are_rate_limited(web: Harness) -> None:
    """After too many failed checks from one address, even a right token gets 429 for a while."""
    machine, token = await web.machine_of()
    for _ in range(3):
        status, _ = await _call(web.client, "authenticate", f"{machine.machine_id}:sec_guess")
        assert status == 401
    status, body = await _call(web.client, "authenticate", token)
    assert status == 429
    assert body["type"] == "RateLimited"
    web.clock.advance(61)
    status, _ = await _call(web.client, "authenticate", token)
    assert status == 200


async def test_successful_calls_do_not_count_against_the_limit(web: Harness) -> None:
    """A busy machine with a right token is never rate limited."""
    _, token = await web.machine_of()
    for _ in range(10):
        status, _ = await _call(web.client, "heartbeat", token)
        assert status == 200


async def test_full_machine_flow(web: Harness) -> None:
    """Every MachineBackend call works over HTTP and answers {"value": ...}."""
    machine, token = await web.machine_of()
    client = web.client
    status, body = await _call(client, "authenticate", token)
    assert (status, body["value"]["machine_id"]) == (200, machine.machine_id)
    status, body = await _call(client, "go_online", token, root_directory="/home/alice/code")
    assert body["value"]["status"] == "online"
    assert body["value"]["root_directory"] == "/home/alice/code"
    status, body = await _call(client, "heartbeat", token)
    assert body["value"]["last_heartbeat"] is not None

    worker_token = await web.backend.issue_worker_token(machine.user_id, machine.machine_id)
    status, body = await _call(
        client, "register_worker", token, worker_token=str(worker_token), directory="./app"
    )
    assert status == 200
    worker = body["value"]
    assert (worker["directory"], worker["status"]) == ("app", "pending_authorization")
    status, body = await _call(client, "worker_heartbeat", token, worker_id=worker["worker_id"])
    assert (status, body["type"]) == (409, "InvalidTransition")
    await web.backend.approve_worker(machine.user_id, worker["worker_id"])

    status, body = await _call(client, "worker_heartbeat", token, worker_id=worker["worker_id"])
    assert body["value"]["status"] == "online"
    status, body = await _call(
        client,
        "update_worker_models",
        token,
        worker_id=worker["worker_id"],
        models=["fake/a", "fake/b", "fake/a"],
    )
    assert body["value"]["models"] == ["fake/a", "fake/b"]
    status, body = await _call(client, "list_own_workers", token)
    assert [w["worker_id"] for w in body["value"]] == [worker["worker_id"]]
    status, body = await _call(client, "worker_offline", token, worker_id=worker["worker_id"])
    assert (body["value"]["status"], body["value"]["problem"]) == ("offline", None)
    problem = "The folder 'app' leads outside the machine's root."
    status, body = await _call(
        client, "worker_offline", token, worker_id=worker["worker_id"], problem=problem
    )
    assert body["value"]["problem"] == problem
    status, body = await _call(client, "go_offline", token)
    assert (status, body) == (200, {"value": None})


async def test_register_worker_refuses_another_machines_token(web: Harness) -> None:
    """A worker token issued for another machine is refused with a sentence."""
    first, token = await web.machine_of()
    other, _ = await web.backend.create_machine(first.user_id, "other")
    foreign = await web.backend.issue_worker_token(first.user_id, other.machine_id)
    status, body = await _call(
        web.client, "register_worker", token, worker_token=str(foreign), directory="x"
    )
    assert status == 400
    assert body["error"] == "This worker token was issued for another machine."


@pytest.mark.parametrize(
    ("method", "args", "sentence"),
    [
        ("go_online", {}, "The field 'root_directory' is required."),
        ("go_online", {"root_directory": 1}, "The field 'root_directory' must be a string."),
        ("worker_heartbeat", {"worker_id": None}, "The field 'worker_id' is required."),
        (
            "worker_offline",
            {"worker_id": "wrk_1", "problem": " "},
            "A worker's problem must be a sentence of 1-8192 characters.",
        ),
        (
            "worker_offline",
            {"worker_id": "wrk_1", "problem": "x" * 8193},
            "A worker's problem must be a sentence of 1-8192 characters.",
        ),
        (
            "update_worker_models",
            {"worker_id": "wrk_1", "models": "x"},
            "The field 'models' must be a list of strings.",
        ),
        (
            "register_worker",
            {"worker_token": "nope", "directory": "x"},
            "Invalid worker token format. Expected: machine_<machine_id>:worker_<worker_id>",
        ),
    ],
)
async def test_bad_arguments_get_one_sentence(
    web: Harness, method: str, args: dict[str, object], sentence: str
) -> None:
    """Missing or wrongly typed arguments get 400 with one sentence."""
    _, token = await web.machine_of()
    status, body = await _call(web.client, method, token, **args)
    assert (status, body["error"]) == (400, sentence)


async def test_unknown_method_is_not_found(web: Harness) -> None:
    """A method the machine API does not have answers 404."""
    _, token = await web.machine_of()
    status, body = await _call(web.client, "delete_everything", token)
    assert status == 404
    assert body["type"] == "NotFound"


async def test_machine_api_needs_no_csrf_or_session(web: Harness) -> None:
    """Machine calls are authenticated by token alone: no cookie, no CSRF header."""
    _, token = await web.machine_of()
    status, _ = await _call(web.client, "go_offline", token)
    assert status == 200

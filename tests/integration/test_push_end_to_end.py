"""A real permission request, asked by real opencode, reaches the stand-in push service.

Server and machine process run as subprocesses, opencode talks to the fake
model, which asks for a ``bash`` tool call; the notification the server sends
is decrypted and its VAPID signature verified by the loopback stand-in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from orchestrator.testing.push_service import StandInPushService
from tests.integration.chat_stage import (
    machine_online,
    ready_worker,
    replies_finished,
    stage,
)
from tests.integration.harness import NEEDS_OPENCODE, own_loop_thread

pytestmark = [pytest.mark.slow, pytest.mark.anyio, NEEDS_OPENCODE]


@contextmanager
def push_service_thread() -> Iterator[StandInPushService]:
    """The stand-in on its own event loop, so the test's blocking waits don't stall it."""
    service = StandInPushService()
    with own_loop_thread(service.start, service.stop, "the stand-in push service"):
        yield service


async def test_a_real_permission_request_sends_one_verified_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """opencode asks to run bash → one notification, decrypted, signed, with Allow/Deny."""
    monkeypatch.setenv("ORCHESTRATOR_PUSH_ALLOW_LOOPBACK_HTTP", "1")
    monkeypatch.setenv("ORCHESTRATOR_PUSH_CONTACT", "mailto:ops@example.com")
    model_options = {"reply": "Done.", "bash_command": "echo hi", "after_tool_reply": "It ran."}
    with push_service_thread() as service, stage(tmp_path, **model_options) as s:
        async with machine_online(s) as online:
            api = online.api
            key = (await api.call("GET", "/api/push"))["public_key"]
            subscription = service.subscribe(key)
            await api.call("POST", "/api/push/subscriptions", {"subscription": subscription}, 201)
            machine_id = s.token.split(":")[0]
            worker_id, model = await ready_worker(api, machine_id)
            started = await api.call(
                "POST", f"/api/workers/{worker_id}/sessions", {"model": model}, 201
            )
            session_id = started["session"]["chat_session_id"]
            await api.send(session_id, "Run it")
            with anyio.fail_after(90):
                while not service.received:
                    await anyio.sleep(0.1)
            [waiting] = (await api.call("GET", f"/api/sessions/{session_id}/permissions"))[
                "permissions"
            ]
            await api.call(
                "POST",
                f"/api/permissions/{waiting['permission_id']}/answer",
                {"answer": "once"},
            )
            _, messages = await api.stream(session_id, replies_finished(1))
    assert messages[-1]["content"] == "It ran."
    [received] = service.received
    assert service.refused == []
    payload = received.payload
    assert payload["title"] == "Permission needed on laptop"
    assert payload["body"] == "The agent in (root folder) wants to use bash."
    assert "echo hi" not in str(payload)
    assert payload["url"] == f"/chat?machine={machine_id}&worker={worker_id}&session={session_id}"
    assert payload["permissionId"] == waiting["permission_id"]
    assert [a["title"] for a in payload["actions"]] == ["Allow", "Deny"]
    assert received.claims["sub"] == "mailto:ops@example.com"
    assert received.claims["aud"] == service.base_url

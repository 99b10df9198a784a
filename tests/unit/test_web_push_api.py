"""The browser's push API: subscribe, unsubscribe, settings; bad input refused, nothing stored."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.domain.chat import ChatMessage, ChatSession, PermissionRequest
from orchestrator.domain.notifications import (
    BAD_AUTH,
    BAD_ENDPOINT,
    BAD_EVENTS,
    BAD_P256DH,
    BAD_QUIET,
    BAD_SUBSCRIPTION,
    NOT_YOURS,
    SUBSCRIPTION_TOO_LARGE,
)
from orchestrator.domain.questions import Question, QuestionOption
from orchestrator.domain.replies import PermissionAsk, QuestionAsk
from orchestrator.testing.push_service import StandInPushService
from tests.unit.test_web_support import Chat, Harness, call, next_sse, online_worker, running_app

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"push_allow_loopback_http": True, "max_body_bytes": 64 * 1024}


@pytest.fixture
async def service() -> AsyncIterator[StandInPushService]:
    started = await StandInPushService().start()
    yield started
    await started.stop()


async def public_key(owner: Chat) -> str:
    status, found = await call(owner, "GET", "/api/push")
    assert status == 200
    return str(found["public_key"])


async def _asks_to_make(owner: Chat) -> tuple[ChatSession, ChatMessage, PermissionRequest]:
    """A claimed reply to "deploy" asking to run ``make``: session, reply, request."""
    session, reply = await owner.claimed("deploy")
    asked = await owner.web.backend.record_permission(
        owner.token, reply.message_id, PermissionAsk("p1", "bash", "make")
    )
    return session, reply, asked


async def test_subscribe_list_and_unsubscribe(owner: Chat, service: StandInPushService) -> None:
    """A browser's subscription is stored for the signed-in user and can be removed."""
    subscription = service.subscribe(await public_key(owner))
    status, saved = await call(
        owner, "POST", "/api/push/subscriptions", {"subscription": subscription}
    )
    assert status == 201
    assert saved["subscription"]["endpoint"] == subscription["endpoint"]
    _, found = await call(owner, "GET", "/api/push")
    assert [s["endpoint"] for s in found["subscriptions"]] == [subscription["endpoint"]]
    assert found["settings"]["events"] == [
        "job_failed",
        "long_reply",
        "machine_offline",
        "permission",
    ]
    endpoint = {"endpoint": subscription["endpoint"]}
    assert (await call(owner, "DELETE", "/api/push/subscriptions", endpoint))[0] == 204
    status, refused = await call(owner, "DELETE", "/api/push/subscriptions", endpoint)
    assert (status, refused["error"]) == (404, "No such push subscription.")


def _valid(service: StandInPushService) -> dict[str, Any]:
    return service.subscribe("B" * 87)


# 65 bytes that look like an uncompressed point (0x04 …) but are not on P-256.
OFF_CURVE = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).rstrip(b"=").decode()

BAD = [
    (lambda s: {**_valid(s), "endpoint": "http://push.example/x"}, 400, BAD_ENDPOINT),
    (lambda s: {**_valid(s), "endpoint": "ftp://push.example/x"}, 400, BAD_ENDPOINT),
    (lambda s: {**_valid(s), "endpoint": 7}, 400, BAD_ENDPOINT),
    (lambda s: {"endpoint": "https://push.example/x"}, 400, BAD_SUBSCRIPTION),
    (lambda s: "not an object", 400, BAD_SUBSCRIPTION),
    (lambda s: {**_valid(s), "keys": {"p256dh": "abc", "auth": "A" * 22}}, 400, BAD_P256DH),
    (lambda s: {**_valid(s), "keys": {**_valid(s)["keys"], "p256dh": OFF_CURVE}}, 400, BAD_P256DH),
    (lambda s: {**_valid(s), "keys": {**_valid(s)["keys"], "auth": "!!"}}, 400, BAD_AUTH),
    (lambda s: {**_valid(s), "padding": "x" * 5000}, 413, SUBSCRIPTION_TOO_LARGE),
]


@pytest.mark.parametrize(("make", "status", "sentence"), BAD)
async def test_bad_subscriptions_are_refused_and_nothing_is_stored(
    owner: Chat, service: StandInPushService, make: Any, status: int, sentence: str
) -> None:
    """Each malformed, oversized or non-https subscription gets one sentence."""
    got, refused = await call(
        owner, "POST", "/api/push/subscriptions", {"subscription": make(service)}
    )
    assert (got, refused["error"]) == (status, sentence)
    assert owner.web.backend.push_subscriptions == {}


async def test_a_subscription_for_another_user_is_refused(
    owner: Chat, service: StandInPushService
) -> None:
    """Naming another user's ID is 403 and stores nothing; naming oneself is fine."""
    subscription = _valid(service)
    body = {"subscription": subscription, "user_id": "usr_someone_else"}
    status, refused = await call(owner, "POST", "/api/push/subscriptions", body)
    assert (status, refused["error"]) == (403, NOT_YOURS)
    assert owner.web.backend.push_subscriptions == {}
    body["user_id"] = owner.user
    assert (await call(owner, "POST", "/api/push/subscriptions", body))[0] == 201


async def test_loopback_http_needs_the_test_setting(
    tmp_path: Path, service: StandInPushService
) -> None:
    """Without the explicit setting, even a loopback http:// endpoint is refused."""
    async with running_app(tmp_path) as web:
        owner = await online_worker(web)
        status, refused = await call(
            owner, "POST", "/api/push/subscriptions", {"subscription": _valid(service)}
        )
    assert (status, refused["error"]) == (400, BAD_ENDPOINT)


async def test_push_calls_need_sign_in_and_csrf(web: Harness, service: StandInPushService) -> None:
    """Anonymous calls are 401; a signed-in call without the CSRF token is 403."""
    assert (await web.client.get("/api/push")).status == 401
    await web.sign_in()
    response = await web.client.post(
        "/api/push/subscriptions", json={"subscription": _valid(service)}
    )
    assert response.status == 403
    assert web.backend.push_subscriptions == {}


async def test_settings_are_saved_and_checked(owner: Chat) -> None:
    """Valid settings replace the old; wrong quiet hours or zones are one sentence each."""
    good = {
        "events": ["permission"],
        "quiet_start": "22:00",
        "quiet_end": "07:00",
        "time_zone": "Europe/Berlin",
    }
    status, saved = await call(owner, "PUT", "/api/push/settings", good)
    assert (status, saved["settings"]) == (200, good)
    for bad, sentence in [
        ({**good, "quiet_end": None}, BAD_QUIET),
        ({**good, "quiet_start": "25:00"}, BAD_QUIET),
        (
            {**good, "time_zone": "Mars/Base"},
            "Unknown time zone 'Mars/Base'. Use a name like 'Europe/Berlin' or 'UTC'.",
        ),
        (
            {**good, "events": ["everything"]},
            BAD_EVENTS.format("job_failed, long_reply, machine_offline, permission"),
        ),
    ]:
        status, refused = await call(owner, "PUT", "/api/push/settings", bad)
        assert (status, refused["error"]) == (400, sentence)
    _, found = await call(owner, "GET", "/api/push")
    assert found["settings"] == good


async def test_a_permission_asked_in_the_app_reaches_the_push_service(
    owner: Chat, service: StandInPushService
) -> None:
    """The server's notifier sends one signed, encrypted notification for the request."""
    subscription = service.subscribe(await public_key(owner))
    await call(owner, "POST", "/api/push/subscriptions", {"subscription": subscription})
    session, _, asked = await _asks_to_make(owner)
    with anyio.fail_after(10):
        while not service.received:
            await anyio.sleep(0.01)
    [received] = service.received
    assert received.payload["permissionId"] == asked.permission_id
    assert received.payload["url"].endswith(f"session={session.chat_session_id}")
    assert service.refused == []


async def test_the_service_worker_and_manifest_are_served_at_the_root(web: Harness) -> None:
    """/sw.js (scope: the whole app) and the manifest, revalidated on every load."""
    worker = await web.client.get("/sw.js")
    assert worker.status == 200
    assert worker.content_type == "text/javascript"
    assert worker.headers["Cache-Control"] == "no-cache"
    assert "notificationclick" in await worker.text()
    manifest = await web.client.get("/manifest.webmanifest")
    assert manifest.content_type == "application/manifest+json"
    parsed = await manifest.json(content_type=None)
    assert (parsed["start_url"], parsed["display"]) == ("/", "standalone")
    assert {icon["sizes"] for icon in parsed["icons"]} == {"192x192", "512x512"}


async def test_the_settings_page_needs_sign_in(web: Harness) -> None:
    """Visitors go to sign-in; a signed-in user sees the Notifications section."""
    response = await web.client.get("/settings", allow_redirects=False)
    assert response.status in (302, 303)
    await web.sign_in()
    page = await web.client.get("/settings")
    assert page.status == 200
    assert 'id="notifications"' in await page.text()


async def test_the_inbox_lists_waiting_requests_of_the_user_only(owner: Chat) -> None:
    """Pending permission requests with machine, worker and session; none of other users."""
    session, _, asked = await _asks_to_make(owner)
    status, found = await call(owner, "GET", "/api/inbox")
    assert status == 200
    [item] = found["items"]
    assert (item["permission_id"], item["tool"], item["description"]) == (
        asked.permission_id,
        "bash",
        "make",
    )
    assert (item["machine"], item["worker"], item["session_id"]) == (
        "laptop",
        "repo",
        session.chat_session_id,
    )
    bob = await owner.web.new_client()
    await owner.web.sign_in(bob, "bob")
    assert (await (await bob.get("/api/inbox")).json())["items"] == []
    page = await owner.web.client.get("/inbox")
    assert 'id="inbox"' in await page.text()


async def test_the_inbox_stream_follows_answers(owner: Chat) -> None:
    """The stream sends the list at once and again when a request is answered."""
    _, _, asked = await _asks_to_make(owner)
    async with owner.web.client.get("/api/inbox/stream") as response:
        first = await next_sse(response)
        assert (first.event, len(first.data["items"])) == ("inbox", 1)
        answered = await call(
            owner, "POST", f"/api/permissions/{asked.permission_id}/answer", {"answer": "once"}
        )
        assert answered[0] == 200
        after = await next_sse(response)
        assert after.data == {"items": [], "finished": []}


async def test_the_inbox_lists_and_streams_questions_beside_permissions(owner: Chat) -> None:
    """A waiting question is an inbox item with what is asked; answering it there clears it."""
    backend = owner.web.backend
    session, reply = await owner.claimed("paint")
    permission = await backend.record_permission(
        owner.token, reply.message_id, PermissionAsk("p", "bash", "ls")
    )
    colour = Question("Which colour?", "Colour", (QuestionOption("Red"), QuestionOption("Blue")))
    asked = await backend.record_question(owner.token, reply.message_id, QuestionAsk("q", [colour]))
    status, found = await call(owner, "GET", "/api/inbox")
    assert status == 200
    assert [
        (i["kind"], i.get("permission_id") or i.get("question_id")) for i in found["items"]
    ] == [
        ("permission", permission.permission_id),
        ("question", asked.question_id),
    ]
    item = found["items"][1]
    assert (item["machine"], item["worker"], item["session_id"]) == (
        "laptop",
        "repo",
        session.chat_session_id,
    )
    assert item["request"]["questions"][0]["question"] == "Which colour?"
    async with owner.web.client.get("/api/inbox/stream") as response:
        first = await next_sse(response)
        assert [i["kind"] for i in first.data["items"]] == ["permission", "question"]
        path = f"/api/questions/{asked.question_id}/answer"
        assert (await call(owner, "POST", path, {"answers": [["Blue"]]}))[0] == 200
        after = await next_sse(response)
        assert [i["kind"] for i in after.data["items"]] == ["permission"]


async def test_the_inbox_count_stream_sends_how_many_wait_as_it_changes(owner: Chat) -> None:
    """The badge's light stream sends only the waiting count, at once and on each change."""
    backend = owner.web.backend
    _, reply, asked = await _asks_to_make(owner)
    async with owner.web.client.get("/api/inbox/stream?count=1") as response:
        first = await next_sse(response)
        assert (first.event, first.data) == ("count", {"waiting": 1})
        colour = Question("Which colour?", "Colour", (QuestionOption("Red"),))
        await backend.record_question(owner.token, reply.message_id, QuestionAsk("q", [colour]))
        more = await next_sse(response)
        assert (more.event, more.data) == ("count", {"waiting": 2})
        path = f"/api/permissions/{asked.permission_id}/answer"
        assert (await call(owner, "POST", path, {"answer": "once"}))[0] == 200
        after = await next_sse(response)
        assert (after.event, after.data) == ("count", {"waiting": 1})

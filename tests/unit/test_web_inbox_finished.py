"""The inbox's finished replies over HTTP: listed, streamed, marked seen; bad input refused."""

from __future__ import annotations

import pytest

from orchestrator.domain.chat import MessageStatus
from orchestrator.domain.notifications import BAD_SEEN_UNTIL
from tests.unit.test_web_support import Chat, call, next_sse

pytestmark = pytest.mark.anyio


async def finish(owner: Chat, text: str, status: MessageStatus = MessageStatus.COMPLETED) -> str:
    """Run one turn of a new session to its end; returns the reply's message ID."""
    backend = owner.web.backend
    _session, reply = await owner.claimed("go")
    if status is MessageStatus.COMPLETED:
        await backend.complete_message(owner.token, reply.message_id, text)
    else:
        await backend.end_reply(owner.token, reply.message_id, status, text)
    return reply.message_id


async def test_finished_replies_are_listed_apart_from_what_waits(owner: Chat) -> None:
    """A finished and a failed reply are listed newest first, with where they ran; no items."""
    done = await finish(owner, "All tests pass.")
    failed = await finish(owner, "The model is unreachable.", MessageStatus.FAILED)
    status, found = await call(owner, "GET", "/api/inbox")
    assert status == 200
    assert found["items"] == []
    assert [(f["message_id"], f["status"], f["preview"]) for f in found["finished"]] == [
        (failed, "failed", "The model is unreachable."),
        (done, "completed", "All tests pass."),
    ]
    first = found["finished"][0]
    assert (first["machine"], first["worker"]) == ("laptop", "repo")
    assert first["url"].startswith("/chat?machine=")
    assert first["session_id"] in first["url"]


async def test_marking_seen_hides_what_the_page_showed_only(owner: Chat) -> None:
    """Seen up to the newest shown reply: it leaves the list; a later reply is listed."""
    await finish(owner, "first")
    _, found = await call(owner, "GET", "/api/inbox")
    until = found["finished"][0]["finished_at"]
    status, _ = await call(owner, "POST", "/api/inbox/seen", {"until": until})
    assert status == 204
    assert (await call(owner, "GET", "/api/inbox"))[1]["finished"] == []
    owner.web.clock.advance(1)
    later = await finish(owner, "second")
    _, found = await call(owner, "GET", "/api/inbox")
    assert [f["message_id"] for f in found["finished"]] == [later]


async def test_the_stream_sends_a_reply_that_finishes_and_the_mark(owner: Chat) -> None:
    """The live inbox shows a reply once it ends, and drops it when marked seen."""
    async with owner.web.client.get("/api/inbox/stream") as response:
        first = await next_sse(response)
        assert first.data == {"items": [], "finished": []}
        done = await finish(owner, "Done.")
        after = await next_sse(response)
        [listed] = after.data["finished"]
        assert listed["message_id"] == done
        seen = {"until": listed["finished_at"]}
        assert (await call(owner, "POST", "/api/inbox/seen", seen))[0] == 204
        assert (await next_sse(response)).data == {"items": [], "finished": []}


async def test_another_users_replies_are_never_listed(owner: Chat) -> None:
    """Bob sees none of alice's finished replies, and his mark does not move hers."""
    await finish(owner, "for alice")
    bob = await owner.web.new_client()
    csrf = await owner.web.sign_in(bob, "bob")
    assert (await (await bob.get("/api/inbox")).json())["finished"] == []
    far = {"until": "9999-01-01T00:00:00+00:00"}
    response = await bob.post("/api/inbox/seen", json=far, headers={"X-CSRF-Token": csrf})
    assert response.status == 204
    assert len((await call(owner, "GET", "/api/inbox"))[1]["finished"]) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"until": 5},
        {"until": "yesterday"},
        {"until": "2026-01-01T12:00:00"},
        {"until": "2026-01-01T12:00:00+00:00" + " " * 64},
        ["until"],
    ],
)
async def test_a_malformed_mark_is_refused_and_changes_nothing(owner: Chat, body: object) -> None:
    """No time with its zone: 400 with one sentence, and the list stays as it was."""
    await finish(owner, "kept")
    status, found = await call(owner, "POST", "/api/inbox/seen", body)
    assert status == 400
    if isinstance(body, dict):
        assert found["error"] == BAD_SEEN_UNTIL
    assert len((await call(owner, "GET", "/api/inbox"))[1]["finished"]) == 1


async def test_marking_seen_needs_sign_in_and_the_csrf_token(owner: Chat) -> None:
    """Without a session the inbox is refused; without the CSRF token the mark is refused."""
    await finish(owner, "kept")
    until = {"until": "9999-01-01T00:00:00+00:00"}
    forged = await owner.web.client.post("/api/inbox/seen", json=until)
    assert forged.status == 403
    stranger = await owner.web.new_client()
    assert (await stranger.get("/api/inbox")).status == 401
    assert (await stranger.get("/api/inbox/stream")).status == 401
    assert (await stranger.post("/api/inbox/seen", json=until)).status in (401, 403)
    assert len((await call(owner, "GET", "/api/inbox"))[1]["finished"]) == 1

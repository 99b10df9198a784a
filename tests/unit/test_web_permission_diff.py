"""An edit permission's file and diff on the browser's wire: the session stream and the inbox."""

from __future__ import annotations

import pytest

from orchestrator.domain.chat import PermissionRequest
from orchestrator.domain.replies import PermissionAsk
from tests.unit.test_web_support import Chat, next_sse

pytestmark = pytest.mark.anyio

DIFF = "@@ -1 +1 @@\n-old\n+<script>alert(1)</script>\n"


async def _asked(chat: Chat) -> tuple[PermissionRequest, PermissionRequest]:
    """An edit request (its diff clipped from 80,000 bytes) and a bash request of one reply."""
    backend = chat.web.backend
    _session, reply = await chat.claimed("fix it")
    edit = await backend.record_permission(
        chat.token,
        reply.message_id,
        PermissionAsk(
            "p1", "edit", "src/<b>a</b>.py", file="/w/src/<b>a</b>.py", diff=DIFF, diff_size=80_000
        ),
    )
    bash = await backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("p2", "bash", "ls")
    )
    return edit, bash


async def test_the_inbox_items_carry_the_file_and_diff(chat: Chat) -> None:
    """GET /api/inbox gives an edit's file, diff and full size as sent; a bash item has none."""
    edit, _ = await _asked(chat)
    response = await chat.web.client.get("/api/inbox")
    assert response.status == 200
    items = (await response.json())["items"]
    assert [(i["tool"], i["file"], i["diff"], i["diff_size"]) for i in items] == [
        ("edit", "/w/src/<b>a</b>.py", DIFF, 80_000),
        ("bash", "", "", 0),
    ]
    assert items[0]["permission_id"] == edit.permission_id


async def test_the_session_stream_carries_the_file_and_diff(chat: Chat) -> None:
    """The session's ``requests`` event lists the edit's file, diff and full size."""
    edit, _ = await _asked(chat)
    path = f"/api/sessions/{edit.chat_session_id}/stream"
    async with chat.web.client.get(path) as stream:
        while (event := await next_sse(stream)).event != "requests":
            pass
    permissions = event.data["permissions"]
    assert [(p["tool"], p["file"], p["diff"], p["diff_size"]) for p in permissions] == [
        ("edit", "/w/src/<b>a</b>.py", DIFF, 80_000),
        ("bash", "", "", 0),
    ]

"""The jobs page's stream: a run starting and finishing is announced, so nothing polls."""

from __future__ import annotations

from typing import Any

import aiohttp
import anyio
import pytest

from tests.unit.test_web_jobs_api import create
from tests.unit.test_web_support import Chat, next_sse

pytestmark = pytest.mark.anyio


async def _next(response: aiohttp.ClientResponse, name: str) -> Any:
    with anyio.fail_after(5):
        while (event := await next_sse(response)).event != name:
            pass
    return event.data


async def test_a_runs_reply_starting_and_finishing_is_a_turns_event(owner: Chat) -> None:
    """``turns`` lists the user's unfinished messages at once and after a run's reply ends."""
    backend = owner.web.backend
    job = await create(owner)
    async with owner.web.client.get("/api/events?jobs=1") as response:
        assert await _next(response, "turns") == {"open": []}
        status, ran = await owner.post(f"/api/jobs/{job['job_id']}/run", {})
        assert status in (200, 201), ran
        waiting = await _next(response, "turns")
        [message_id] = waiting["open"]
        reply = await backend.claim_message(owner.token, message_id)
        opened = await _next(response, "turns")
        assert sorted(opened["open"]) == sorted([message_id, reply.message_id])
        await backend.complete_message(owner.token, reply.message_id, "All green.")
        assert await _next(response, "turns") == {"open": []}


async def test_another_users_turns_are_not_shown(owner: Chat) -> None:
    """Someone else's replies do not reach this user's stream."""
    other = await owner.web.new_client()
    await owner.web.sign_in(other, "mallory")
    job = await create(owner)
    async with other.get("/api/events?jobs=1") as response:
        assert await _next(response, "turns") == {"open": []}
        status, _ = await owner.post(f"/api/jobs/{job['job_id']}/run", {})
        assert status in (200, 201)
        with anyio.move_on_after(0.5):
            data = await _next(response, "turns")
            raise AssertionError(f"another user's turns were sent: {data}")

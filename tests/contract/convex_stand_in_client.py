"""A stand-in for ``convex.ConvexClient`` in the subscription child, for the loopback harness.

The harness serves Convex's HTTP API, not its sync protocol, so the official
client cannot subscribe to it. This class has the client's ``subscribe`` (an
async-iterable subscription with ``unsubscribe``) and fails like it: a
function's ``ConvexError`` as ``convex.ConvexError``, any other failure as a
bare ``Exception`` carrying Convex's raw message. It gets its values by
polling the harness, so the child process, its pipe and the parent's side run
for real. The child loads it as ``tests.contract.convex_stand_in_client:PollingClient``.
"""

from __future__ import annotations

from typing import Any, Final

import aiohttp
import anyio
from convex import ConvexError
from convex.values import convex_to_json, json_to_convex

FACTORY: Final = "tests.contract.convex_stand_in_client:PollingClient"
POLL_INTERVAL: Final = 0.02


class PollingSubscription:
    """The values of one query as ``QuerySubscription`` yields them: one per poll."""

    def __init__(self, url: str, path: str, args: dict[str, Any]) -> None:
        self._url = url
        self._body = {"path": path, "format": "convex_encoded_json", "args": convex_to_json(args)}
        self._polled = False
        self.unsubscribed = False

    def __aiter__(self) -> PollingSubscription:
        return self

    async def __anext__(self) -> Any:
        if self._polled:
            await anyio.sleep(POLL_INTERVAL)
        self._polled = True
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(f"{self._url}/api/query", json=self._body) as response,
        ):
            reply = await response.json(content_type=None)
        if reply.get("status") == "success":
            return json_to_convex(reply["value"])
        if "errorData" in reply:
            raise ConvexError(reply["errorMessage"], json_to_convex(reply["errorData"]))
        # The Rust client raises a bare Exception with Convex's message.
        raise Exception(reply.get("errorMessage") or reply.get("message"))

    def unsubscribe(self) -> None:
        self.unsubscribed = True


class PollingClient:
    """``ConvexClient(url)`` with only ``subscribe``; the child never calls anything else."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")

    def subscribe(self, name: str, args: dict[str, Any]) -> PollingSubscription:
        return PollingSubscription(self._url, name, args)

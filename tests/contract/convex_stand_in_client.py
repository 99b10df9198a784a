"""A stand-in for ``convex.ConvexClient`` in the subscription child, for the loopback harness.

The harness serves Convex's HTTP API, not its sync protocol, so the official
client cannot subscribe to it. This class has the client's ``subscribe`` (an
async-iterable subscription with ``unsubscribe``) and gets its values by
polling the harness, so the child process, its pipe and the parent's side run
for real. It is loaded by the child as
``tests.contract.convex_stand_in_client:PollingClient``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from orchestrator.adapters.convex import HttpTransport

FACTORY = "tests.contract.convex_stand_in_client:PollingClient"


class PollingSubscription:
    """Values of one query as ``QuerySubscription`` yields them (each poll's value)."""

    def __init__(self, transport: HttpTransport, path: str, args: dict[str, Any]) -> None:
        self._values: AsyncGenerator[Any, None] = transport.watch(path, args)
        self.unsubscribed = False

    def __aiter__(self) -> PollingSubscription:
        return self

    async def __anext__(self) -> Any:
        return await anext(self._values)

    def unsubscribe(self) -> None:
        # Cancelling the child's task already ended the poll that was waiting.
        self.unsubscribed = True


class PollingClient:
    """``ConvexClient(url)`` with only ``subscribe``; the child never calls anything else."""

    def __init__(self, url: str) -> None:
        self._transport = HttpTransport(url, timeout=10, poll_interval=0.02)

    def subscribe(self, name: str, args: dict[str, Any]) -> PollingSubscription:
        return PollingSubscription(self._transport, name, args)

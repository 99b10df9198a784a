"""Two ways to reach a Convex deployment: its WebSocket client, and its HTTP API with polling.

Both call functions by path (``"machines:heartbeat"``) and watch a query: the
current value at once, then each *different* value. Both raise
``convex.ConvexError`` for a function's refusal (the caller maps it to the
domain error) and :class:`BackendUnavailable` when the deployment cannot be
reached or answers in a way no deployment of these functions would.

A function's own failure (not a ``ConvexError``) is mapped by :func:`failed`:
Convex's limit errors become ``BackendLimitExceeded`` with our sentence;
anything else :class:`BackendUnavailable`; the raw message goes only to the log.

* :class:`ClientTransport` watches through the official ``convex.ConvexClient``'s
  ``subscribe`` -- pushed by the deployment, no polling -- run in a child
  process, because the client holds the GIL while it waits; its calls go over
  the HTTP API like :class:`HttpTransport`'s. Real deployments use it.
* :class:`HttpTransport` POSTs to ``/api/query|mutation|action`` with aiohttp
  (timeouts on every request) and watches by polling, for networks that block
  WebSockets and for the loopback test harness. A failed poll is retried with
  exponential backoff and full jitter: a watch outlives a short outage.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import Any, Final, Literal, Protocol

import aiohttp
import anyio
from convex import ConvexError
from convex import __version__ as convex_version
from convex.values import convex_to_json, json_to_convex

from orchestrator.adapters.convex._errors import failed, refused, unreachable
from orchestrator.adapters.convex._subscriptions import DEFAULT_FACTORY, SubscriptionProcess
from orchestrator.application.retry import Backoff
from orchestrator.domain.errors import BackendUnavailable

log = logging.getLogger(__name__)

Kind = Literal["query", "mutation", "action"]
Args = Mapping[str, Any]

#: Convex's HTTP status for "the function ran and threw".
UDF_FAILED: Final = 560
#: Waits between failed polls: from up to 1 s after the first failure, doubling up to 30 s.
POLL_BACKOFF: Final = Backoff(base=0.5, cap=30.0)
_MISSING: Final = object()


class Transport(Protocol):
    async def call(self, kind: Kind, path: str, args: Args) -> Any:
        """Run one function and return its value."""
        ...

    def watch(self, path: str, args: Args) -> AsyncGenerator[Any, None]:
        """A query's value now, then each time it changes; ends when the transport closes."""
        ...

    async def close(self) -> None:
        """End every watch and release connections; idempotent."""
        ...


class HttpTransport:
    """Convex's HTTP API over aiohttp; watches poll every ``poll_interval`` seconds."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        poll_interval: float = 1.0,
        backoff: Backoff = POLL_BACKOFF,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.backoff = backoff
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not a secret
        self._session: aiohttp.ClientSession | None = None
        self._closed = anyio.Event()

    def _client(self) -> aiohttp.ClientSession:
        if self._closed.is_set():
            raise BackendUnavailable("The Convex backend is closed.")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # The header the official Python HTTP client sends.
                headers={"Convex-Client": f"python-{convex_version}"},
            )
        return self._session

    async def call(self, kind: Kind, path: str, args: Args) -> Any:
        body = {"path": path, "format": "convex_encoded_json", "args": convex_to_json(dict(args))}
        try:
            async with self._client().post(f"{self.url}/api/{kind}", json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise unreachable(self.url) from exc
        try:
            reply = json.loads(text)
        except ValueError as exc:
            raise refused(self.url, f"HTTP {status}, not JSON") from exc
        if status == 200 and isinstance(reply, dict) and reply.get("status") == "success":
            return json_to_convex(reply["value"])
        if (
            status in (200, UDF_FAILED)
            and isinstance(reply, dict)
            and reply.get("status") == "error"
        ):
            message = str(reply.get("errorMessage", ""))
            if "errorData" in reply:
                raise ConvexError(message, json_to_convex(reply["errorData"]))
            raise failed(self.url, path, message)
        log.warning("Convex answered %s on %s with HTTP %s: %s", path, self.url, status, text[:500])
        raise refused(self.url, f"HTTP {status}")

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or return True at once when the transport closes."""
        with anyio.move_on_after(seconds):
            await self._closed.wait()
        return self._closed.is_set()

    async def watch(self, path: str, args: Args) -> AsyncGenerator[Any, None]:
        last: Any = _MISSING
        failures = 0
        while not self._closed.is_set():
            try:
                value = await self.call("query", path, args)
            except BackendUnavailable:
                if self._closed.is_set():
                    return
                failures += 1
                delay = self.backoff.delay(failures, self._rng.random)
                log.warning("Polling %s failed; trying again in %.1f s", path, delay)
                if await self._pause(delay):
                    return
                continue
            failures = 0
            if value != last:
                last = value
                yield value
            if await self._pause(self.poll_interval):
                return

    async def close(self) -> None:
        self._closed.set()
        if self._session is not None:
            await self._session.close()
            self._session = None


class ClientTransport:
    """The official client's live subscriptions, in a child process; calls over the HTTP API.

    ``convex.ConvexClient`` holds the GIL while it waits for the deployment,
    so it never runs in this process (see ``_subscriptions``). Calls are plain
    HTTP requests with a timeout, concurrent and never blocking the event loop.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        client_factory: str = DEFAULT_FACTORY,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._calls = HttpTransport(self.url, timeout=timeout)
        self._subscriptions = SubscriptionProcess(self.url, factory=client_factory)
        self._closed = anyio.Event()

    async def call(self, kind: Kind, path: str, args: Args) -> Any:
        return await self._calls.call(kind, path, args)

    async def watch(self, path: str, args: Args) -> AsyncGenerator[Any, None]:
        if self._closed.is_set():
            return
        last: Any = _MISSING
        try:
            async with aclosing(self._subscriptions.watch(path, dict(args))) as values:
                async for value in values:
                    if value != last:
                        last = value
                        yield value
        except BackendUnavailable:
            if self._closed.is_set():
                return
            raise

    async def close(self) -> None:
        self._closed.set()
        await self._calls.close()
        await self._subscriptions.close()

"""Two ways to reach a Convex deployment: its WebSocket client, and its HTTP API with polling.

Both call functions by path (``"machines:heartbeat"``) and watch a query: the
current value at once, then each *different* value. Both raise
``convex.ConvexError`` for a function's refusal (the caller maps it to the
domain error) and :class:`BackendUnavailable` when the deployment cannot be
reached or answers in a way no deployment of these functions would.

* :class:`ClientTransport` wraps the official ``convex.ConvexClient``: calls
  run in a worker thread (the client blocks), and watches are its
  ``subscribe`` -- pushed by the deployment, no polling. Real deployments use it.
* :class:`HttpTransport` POSTs to ``/api/query|mutation|action`` with aiohttp
  (timeouts on every request) and watches by polling, for networks that block
  WebSockets and for the loopback test harness. A failed poll is retried with
  exponential backoff and full jitter: a watch outlives a short outage.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any, Final, Literal, Protocol

import aiohttp
import anyio
from convex import ConvexClient, ConvexError
from convex import __version__ as convex_version
from convex.values import convex_to_json, json_to_convex

from orchestrator.domain.errors import BackendUnavailable

log = logging.getLogger(__name__)

Kind = Literal["query", "mutation", "action"]
Args = Mapping[str, Any]

#: Convex's HTTP status for "the function ran and threw".
UDF_FAILED: Final = 560
_MISSING: Final = object()


def unreachable(url: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"The Convex deployment at {url} cannot be reached. Check CONVEX_URL and the network."
    )


def refused(url: str, detail: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"The Convex deployment at {url} could not run the call ({detail}). Deploy the"
        " functions of this orchestrator version with: npx convex deploy."
    )


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
        max_backoff: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
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
            raise refused(self.url, message)
        detail = reply.get("message") if isinstance(reply, dict) else None
        raise refused(self.url, f"HTTP {status}: {detail or text[:200]}")

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
                delay = self._rng.uniform(0, min(self.max_backoff, 0.5 * 2**failures))
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
    """The official WebSocket client, ``convex.ConvexClient``; watches are its subscriptions."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        client_factory: Callable[[str], ConvexClient] = ConvexClient,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client = client_factory(self.url)
        self._closed = anyio.Event()

    async def call(self, kind: Kind, path: str, args: Args) -> Any:
        if self._closed.is_set():
            raise BackendUnavailable("The Convex backend is closed.")
        run: Callable[[str, Any], Any] = getattr(self._client, kind)
        try:
            with anyio.fail_after(self.timeout):
                # The client blocks until the deployment answers: keep it off the event loop.
                return await anyio.to_thread.run_sync(run, path, dict(args), abandon_on_cancel=True)
        except ConvexError:
            raise
        except TimeoutError as exc:
            raise unreachable(self.url) from exc
        except Exception as exc:  # the Rust client raises bare Exceptions
            raise refused(self.url, str(exc) or type(exc).__name__) from exc

    async def watch(self, path: str, args: Args) -> AsyncGenerator[Any, None]:
        if self._closed.is_set():
            return
        subscription = self._client.subscribe(path, dict(args))
        last: Any = _MISSING
        try:
            while True:
                value: Any = _MISSING
                failure: Exception | None = None

                async def take_next(done: anyio.CancelScope) -> None:
                    nonlocal value, failure
                    try:
                        value = await anext(subscription)
                    except Exception as exc:  # re-raised below, outside the task group
                        failure = exc
                    done.cancel()

                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(take_next, tasks.cancel_scope)
                    await self._closed.wait()
                    tasks.cancel_scope.cancel()
                if failure is not None:
                    raise failure
                if value is _MISSING:  # closed while waiting
                    return
                if value != last:
                    last = value
                    yield value
        except ConvexError:
            raise
        except Exception as exc:
            raise refused(self.url, str(exc) or type(exc).__name__) from exc
        finally:
            subscription.unsubscribe()

    async def close(self) -> None:
        self._closed.set()

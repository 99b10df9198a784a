"""The transport to ``orchestrator serve``'s machine API: HTTP calls and WebSocket subscriptions.

Errors the server raised arrive as the same domain exception with the same
message; a server that cannot be reached is :class:`BackendUnavailable`.
Subscriptions survive dropped connections: they reconnect with exponential
backoff and full jitter, subscribe again and yield the fresh value.
"""

from __future__ import annotations

import abc
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from functools import partial
from typing import Any, Final, Protocol, Self, TypeVar, get_args

import aiohttp
import anyio

from orchestrator.adapters.machine_api import REUSE_FLAG, ListFrame, rebuild_items
from orchestrator.adapters.wire import (
    MACHINE_API_PREFIX,
    MACHINE_WS_PATH,
    converter,
    error_from_body,
)
from orchestrator.application.retry import Backoff
from orchestrator.domain.errors import BackendUnavailable, OrchestratorError
from orchestrator.domain.ids import MachineToken

log = logging.getLogger(__name__)

T = TypeVar("T")

WS_HEARTBEAT_SECONDS: Final = 20.0
#: Connections open to the server at once (calls beyond wait for one). Half the
#: server's default cap per client address (64; past it the server answers 503), so
#: a busy machine never trips its own server, with room for a second machine or a
#: browser behind the same address.
MAX_CONNECTIONS: Final = 32
#: Largest frame accepted from the server: a work list can carry many long pending messages.
WS_MAX_FRAME_BYTES: Final = 256 * 1024 * 1024


class Timeouts(Protocol):
    """The client's timing settings; ``MachineSettings`` is one."""

    @property
    def request_timeout(self) -> timedelta: ...

    @property
    def max_backoff(self) -> timedelta: ...


class Closing(abc.ABC):
    """An async context manager that calls :meth:`close` when its block ends."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release what the object holds."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


class MachineApiClient(Closing):
    """A connection to the machine API of ``orchestrator serve`` at ``server_url``.

    ``timeouts`` (e.g. ``MachineSettings``) gives the per-call timeout and the
    reconnect backoff cap; keyword arguments override it.
    """

    def __init__(
        self,
        server_url: str,
        timeouts: Timeouts | None = None,
        *,
        request_timeout: timedelta | None = None,
        max_backoff: timedelta | None = None,
        min_backoff: timedelta = timedelta(milliseconds=500),
        rng: random.Random | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.request_timeout = request_timeout or (
            timeouts.request_timeout if timeouts else timedelta(seconds=15)
        )
        cap = max_backoff or (timeouts.max_backoff if timeouts else timedelta(seconds=30))
        #: How long to wait before each reconnect.
        self.reconnect = Backoff(base=min_backoff.total_seconds(), cap=cap.total_seconds())
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not a secret
        self._session: aiohttp.ClientSession | None = None

    @property
    def min_backoff(self) -> timedelta:
        """The first reconnect waits up to this long."""
        return timedelta(seconds=self.reconnect.base)

    @property
    def max_backoff(self) -> timedelta:
        """No reconnect waits longer than this."""
        return timedelta(seconds=self.reconnect.cap)

    async def close(self) -> None:
        """Close the connections to the server."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- plumbing -------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Non-ASCII text travels as UTF-8, not as escapes up to three times larger.
            dumps = partial(json.dumps, ensure_ascii=False)
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(json_serialize=dumps, connector=connector)
        return self._session

    @property
    def _unreachable(self) -> str:
        return f"Cannot reach the server at {self.server_url}. Is `orchestrator serve` running?"

    @staticmethod
    def _headers(token: MachineToken) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def _structure(self, value: object, kind: type[T]) -> T:
        try:
            return converter.structure(value, kind)
        except Exception as exc:
            raise self._unreadable() from exc

    def _unreadable(self) -> BackendUnavailable:
        return BackendUnavailable(
            f"The server at {self.server_url} sent an answer this version cannot read. "
            "Run the same orchestrator version on both sides."
        )

    def _rebuild(
        self, previous: list[object] | None, frame: ListFrame, kind: object
    ) -> list[object]:
        """The list ``frame`` stands for (``kind`` is its ``list[...]`` type), items reused."""
        [item_kind] = get_args(kind) or (object,)
        try:
            return rebuild_items(previous, frame, lambda item: self._structure(item, item_kind))
        except ValueError as exc:
            raise self._unreadable() from exc

    async def request(
        self, method: str, path: str, body: object, headers: Mapping[str, str]
    ) -> tuple[int, str]:
        """One HTTP request to the server: its status and text (BackendUnavailable if none)."""
        seconds = self.request_timeout.total_seconds()
        try:
            async with self._client().request(
                method,
                self.server_url + path,
                json=body,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=seconds),
            ) as response:
                return response.status, await response.text()
        except TimeoutError as exc:
            raise BackendUnavailable(
                f"The server at {self.server_url} did not answer within {seconds:g} s."
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendUnavailable(self._unreachable) from exc

    async def _call(self, method: str, token: MachineToken, **args: object) -> object:
        path = f"{MACHINE_API_PREFIX}/{method}"
        status, text = await self.request("POST", path, args, self._headers(token))
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = None
        if status >= 400:
            raise error_from_body(status, body)
        if not isinstance(body, dict) or "value" not in body:
            raise BackendUnavailable(
                f"The server at {self.server_url} did not answer like `orchestrator serve`."
            )
        return body["value"]

    # --- subscriptions ----------------------------------------------------------

    def backoff(self, failures: int) -> float:
        """Seconds to wait before reconnect attempt ``failures + 1`` (full jitter)."""
        return self.reconnect.delay(failures, self._rng.random)

    async def subscribe(
        self, token: MachineToken, name: str, args: Mapping[str, object] | None = None
    ) -> AsyncIterator[object]:
        """Raw values of the server subscription ``name``, across reconnects."""
        url = self.server_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        url += MACHINE_WS_PATH
        failures = 0
        while True:
            try:
                async for value in self._subscribe_once(url, token, name, dict(args or {})):
                    failures = 0
                    yield value
                reason = "the server closed the connection"
            except aiohttp.WSServerHandshakeError as exc:
                if 400 <= exc.status < 500:
                    await self._call("authenticate", token)  # raises the server's exact reason
                reason = f"the server refused the connection (HTTP {exc.status})"
            except BackendUnavailable as exc:
                reason = exc.message
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            delay = self.backoff(failures)
            failures += 1
            log.warning("Subscription %s: %s; reconnecting in %.1f s", name, reason, delay)
            await anyio.sleep(delay)

    async def open_websocket(
        self, token: MachineToken, url: str | None = None
    ) -> aiohttp.ClientWebSocketResponse:
        """A new WebSocket to the server's machine API."""
        if url is None:
            url = self.server_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
            url += MACHINE_WS_PATH
        with anyio.fail_after(self.request_timeout.total_seconds()):
            return await self._client().ws_connect(
                url,
                headers=self._headers(token),
                heartbeat=WS_HEARTBEAT_SECONDS,
                max_msg_size=WS_MAX_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(
                    ws_receive=None, ws_close=self.request_timeout.total_seconds()
                ),
            )

    async def _subscribe_once(
        self, url: str, token: MachineToken, name: str, args: dict[str, object]
    ) -> AsyncIterator[object]:
        ws = await self.open_websocket(token, url)
        try:
            await ws.send_json({"id": 1, "subscribe": name, "args": args, REUSE_FLAG: True})
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    log.warning("Subscription %s: ignored a frame that is not JSON", name)
                    continue
                if not isinstance(frame, dict) or frame.get("id") != 1:
                    continue
                if "error" in frame:
                    error: OrchestratorError = error_from_body(0, frame)
                    raise error
                same = frame.get("same")
                value = frame.get("value")
                if isinstance(same, list) and isinstance(value, list):
                    yield ListFrame(value, same)
                else:
                    yield value
        finally:
            with anyio.CancelScope(shield=True):
                await ws.close()

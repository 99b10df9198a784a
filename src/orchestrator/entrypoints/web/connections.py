"""Connections the server accepts: a cap per client address and a deadline for a request's head.

aiohttp has neither, so one client (slowloris) could hold every file
descriptor with idle or trickling connections and take the server off the air.
Each connection's protocol is wrapped: past ``max_per_address`` open
connections from one address, a new one is answered 503 with a sentence and
closed; a connection whose first request head (up to the blank line) has not
arrived within ``head_timeout`` is closed, with a 408 if part of it came. Idle keep-alive
connections are closed by aiohttp's own ``keepalive_timeout`` (75 s, longer than
clients keep theirs, so a client never reuses one the server just closed); the
cap bounds how many one address can hold meanwhile. Behind a reverse
proxy every connection comes from the proxy's address: raise the cap there (0
turns it off) and let the proxy enforce its own.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Final

import attrs
from aiohttp import web

from orchestrator.entrypoints.settings import ServerSettings

TOO_MANY: Final = b"Too many connections from your address. Close some and try again.\n"
TOO_SLOW: Final = b"The request took too long to arrive.\n"


def _answer(status: str, sentence: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(sentence)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + sentence


@attrs.define
class ConnectionGuard:
    """Open connections per client address, and how long a request's head may take."""

    max_per_address: int
    head_timeout: float
    open: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def wrap(self, factory: web.Server) -> _GuardedProtocol:
        """A protocol for one new connection, around the one aiohttp makes."""
        return _GuardedProtocol(factory(), self)


class _GuardedProtocol(asyncio.Protocol):
    """Forwards to aiohttp's protocol once the connection is admitted."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._address: str | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        guard = self._guard
        if guard.max_per_address and guard.open[address] >= guard.max_per_address:
            transport.write(_answer("503 Service Unavailable", TOO_MANY))
            transport.close()
            return
        guard.open[address] += 1
        self._address, self._transport = address, transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(guard.head_timeout, self._too_slow)
        self._inner.connection_made(transport)

    def _too_slow(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            if self._received:
                self._transport.write(_answer("408 Request Timeout", TOO_SLOW))
            # A connection that never sent a byte (a browser's preconnect) just closes,
            # so the browser opens a fresh one instead of reading a 408 as an answer.
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._address is None:
            return  # refused
        self._received = True
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._timer.cancel()
                self._timer = None
            self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._address is None:
            return None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._address is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._address is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._address is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._guard.open[self._address] -= 1
        if self._guard.open[self._address] <= 0:
            del self._guard.open[self._address]
        self._inner.connection_lost(exc)


class GuardedSite(web.TCPSite):
    """A TCP site whose connections go through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, settings: ServerSettings) -> None:
        super().__init__(runner, settings.host, settings.port)
        self.guard = ConnectionGuard(
            settings.max_connections_per_address, settings.request_head_timeout.total_seconds()
        )

    async def start(self) -> None:
        """Listen, wrapping every accepted connection in the guard."""
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            lambda: self.guard.wrap(server), self._host, self._port, reuse_address=True
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

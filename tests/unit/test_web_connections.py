"""Slowloris: one client holding many idle or trickling connections cannot take the server down.

The real listener of ``orchestrator serve`` (``start_site``) on loopback; the
attacker connects from 127.0.0.2, the honest browser from 127.0.0.1.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import anyio
import anyio.abc
import pytest
from aiohttp import web

from orchestrator.entrypoints.runtime import start_site
from orchestrator.entrypoints.web import create_app
from orchestrator.entrypoints.web.connections import TOO_MANY, TOO_SLOW
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds
from tests.unit.test_web_support import settings_for

pytestmark = pytest.mark.anyio

CAP = 8
ATTACKER = "127.0.0.2"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    backend = InMemoryBackend(clock=FakeClock(), ids=SequentialIds(), hasher=PlainHasher())
    settings = settings_for(
        tmp_path,
        port=_free_port(),
        max_connections_per_address=CAP,
        request_head_timeout=timedelta(seconds=1),
    )
    app = create_app(backend, hasher=PlainHasher(), clock=FakeClock(), settings=settings)
    runner: web.AppRunner = await start_site(app, settings)
    try:
        yield settings.port
    finally:
        await runner.cleanup()
        await backend.close()


async def _read_all(stream: anyio.abc.SocketStream) -> bytes:
    chunks = []
    try:
        while True:
            chunks.append(await stream.receive())
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        pass
    return b"".join(chunks)


async def _honest_get(port: int) -> int:
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(f"http://127.0.0.1:{port}/login") as response,
    ):
        return response.status


async def test_idle_connections_from_one_address_are_capped_and_dropped(port: int) -> None:
    """Past the cap an address gets 503 at once; its idle ones are closed; others are served."""
    idle = [await anyio.connect_tcp("127.0.0.1", port, local_host=ATTACKER) for _ in range(CAP)]
    try:
        with anyio.fail_after(5):
            for _ in range(3 * CAP):
                async with await anyio.connect_tcp("127.0.0.1", port, local_host=ATTACKER) as extra:
                    answer = await _read_all(extra)
                assert answer.startswith(b"HTTP/1.1 503")
                assert answer.endswith(TOO_MANY)
            assert await _honest_get(port) == 200
        with anyio.fail_after(5):
            for stream in idle:
                assert await _read_all(stream) == b""  # closed without a word: nothing was sent
    finally:
        for stream in idle:
            await stream.aclose()
    with anyio.fail_after(5):
        async with await anyio.connect_tcp("127.0.0.1", port, local_host=ATTACKER) as again:
            await again.send(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert (await _read_all(again)).startswith(b"HTTP/1.1 200")


async def test_a_trickling_request_head_is_cut_off(port: int) -> None:
    """A request head sent a byte at a time never completes: 408 after the deadline."""
    head = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100
    async with await anyio.connect_tcp("127.0.0.1", port, local_host=ATTACKER) as stream:
        answer = b""
        with anyio.fail_after(5):
            for byte in head:
                await stream.send(bytes([byte]))
                with anyio.move_on_after(0.05):  # the pace of the trickle, reading meanwhile
                    answer += await stream.receive()
                if answer:
                    break
            answer += await _read_all(stream)
    assert answer.startswith(b"HTTP/1.1 408")
    assert answer.endswith(TOO_SLOW)


async def test_keep_alive_requests_and_streams_outlive_the_head_deadline(port: int) -> None:
    """Once the head has arrived the deadline is off: a slow keep-alive client is served."""
    async with aiohttp.ClientSession() as browser:
        for _ in range(2):
            async with browser.get(f"http://127.0.0.1:{port}/login") as response:
                assert response.status == 200
            await anyio.sleep(1.2)  # longer than the head deadline, within keep-alive

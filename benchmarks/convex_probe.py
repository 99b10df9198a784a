"""The Convex adapter and the event loop: ticks during 10 concurrent slow calls, silent timeouts.

Loopback stand-ins of Convex's HTTP API only (no deployment runs here): one
answers every call after 300 ms, one accepts connections and never answers.
The loop is asked to tick every 10 ms; a transport that held it during a call
would leave it only a few ticks. Bounded: ~5 s. Run: ``python benchmarks/convex_probe.py``.
"""

from __future__ import annotations

import socket
import time

import anyio
from aiohttp import web

from orchestrator.adapters.convex import open_convex_backend
from orchestrator.adapters.convex.backend import TransportName
from orchestrator.domain.errors import BackendUnavailable
from orchestrator.testing.serving import serving

SLOW = 0.3
TICK = 0.01


async def _slow_answer(request: web.Request) -> web.Response:
    await anyio.sleep(SLOW)
    return web.json_response({"status": "success", "value": 0.0})


async def _probe(url: str, transport: TransportName) -> None:
    backend = open_convex_backend(url, transport=transport, timeout=10)
    ticks = 0
    done = anyio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.sleep(TICK)

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        async with anyio.create_task_group() as calls:
            for _ in range(10):
                calls.start_soon(backend.count_users)
        elapsed = time.perf_counter() - started
        done.set()
    await backend.close()
    print(
        f"{transport:9}  10 concurrent calls (300 ms each): {elapsed:.2f} s,"
        f" event loop ticked {ticks} of ~{elapsed / TICK:.0f}"
    )


async def _silent(url: str, transport: TransportName) -> None:
    backend = open_convex_backend(url, transport=transport, timeout=2)
    started = time.perf_counter()
    try:
        await backend.count_users()
        outcome = "answered?"
    except BackendUnavailable as exc:
        outcome = f"BackendUnavailable ({exc.message})"
    await backend.close()
    waited = time.perf_counter() - started
    print(f"{transport:9}  silent deployment, timeout 2 s: {waited:.2f} s, {outcome}")


async def main() -> None:
    app = web.Application()
    app.router.add_post("/api/{kind}", _slow_answer)
    async with serving(app) as slow:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(64)
            silent = f"http://127.0.0.1:{listener.getsockname()[1]}"
            for transport in ("websocket", "http"):
                await _probe(slow, transport)
                await _silent(silent, transport)


if __name__ == "__main__":
    anyio.run(main)

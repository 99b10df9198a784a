"""Sign-in under load: N concurrent sign-ins with real argon2, and how long other requests wait.

The real app on 127.0.0.1 over the embedded SQLite backend (a temp directory)
with the production ``Argon2Hasher``. While ``--sign-ins`` browsers sign in at
once, one signed-in browser asks ``GET /api/machines`` every 20 ms; the script
prints how long the sign-ins took in all and the latency of those other
requests. Bounded: one burst, a few seconds on 2 cores.

    python benchmarks/signin.py [--sign-ins 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.application import accounts
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web import create_app

PASSWORD = "correct horse battery"


async def _sign_in(url: str) -> float:
    started = time.perf_counter()
    async with (
        aiohttp.ClientSession() as browser,
        browser.post(f"{url}/api/login", json={"username": "alice", "password": PASSWORD}) as r,
    ):
        assert r.status == 200, await r.text()
    return time.perf_counter() - started


async def _watch(browser: aiohttp.ClientSession, url: str, done: asyncio.Event) -> list[float]:
    latencies: list[float] = []
    while not done.is_set():
        started = time.perf_counter()
        async with browser.get(f"{url}/api/machines") as response:
            assert response.status == 200
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


async def run(sign_ins: int) -> None:
    """Start the app, sign ``sign_ins`` browsers in at once, and print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        hasher = Argon2Hasher()
        clock = SystemClock()
        backend = await open_backend(
            data_dir / "orchestrator.sqlite3", clock=clock, ids=RandomIds(), hasher=hasher
        )
        await accounts.create_user(backend, hasher, "alice", PASSWORD)
        settings = ServerSettings(data_dir=data_dir, port=0, login_attempts_per_minute=1000)
        app = create_app(backend, hasher=hasher, clock=clock, settings=settings)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}"
        try:
            jar = aiohttp.CookieJar(unsafe=True)  # keep cookies for an IP address
            async with aiohttp.ClientSession(cookie_jar=jar) as bystander:
                async with bystander.post(
                    f"{url}/api/login", json={"username": "alice", "password": PASSWORD}
                ) as response:
                    assert response.status == 200
                done = asyncio.Event()
                watcher = asyncio.create_task(_watch(bystander, url, done))
                await asyncio.sleep(0.1)
                started = time.perf_counter()
                each = await asyncio.gather(*(_sign_in(url) for _ in range(sign_ins)))
                total = time.perf_counter() - started
                done.set()
                latencies = await watcher
        finally:
            await runner.cleanup()
            await backend.close()
    ms = sorted(1000 * x for x in latencies)
    print(f"{sign_ins} concurrent sign-ins (argon2 defaults): all done in {total:.2f} s;")
    print(f"  one sign-in: median {statistics.median(each):.2f} s, slowest {max(each):.2f} s")
    print(
        f"  other requests meanwhile ({len(ms)}): median {statistics.median(ms):.1f} ms,"
        f" slowest {ms[-1]:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sign-ins", type=int, default=40, help="concurrent sign-ins (max 200)")
    args = parser.parse_args()
    asyncio.run(run(min(args.sign_ins, 200)))


if __name__ == "__main__":
    main()

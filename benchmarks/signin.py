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
import time

import aiohttp
from _app import PASSWORD, sign_in, sqlite_app


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
    async with (
        sqlite_app(login_attempts_per_minute=1000) as app,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as bystander,
    ):
        await sign_in(bystander, app.url)  # the jar keeps cookies for an IP address
        done = asyncio.Event()
        watcher = asyncio.create_task(_watch(bystander, app.url, done))
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        each = await asyncio.gather(*(_sign_in(app.url) for _ in range(sign_ins)))
        total = time.perf_counter() - started
        done.set()
        latencies = await watcher
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

"""What signing a request in by API token costs: cookie vs bearer, and why not argon2.

The real app on 127.0.0.1 over the embedded SQLite backend (a temp directory).
One client asks ``GET /api/machines`` ``--requests`` times with its session
cookie, then as many times with an API token; the script prints the median
and p95 of each, and the time of one argon2 verification with the production
parameters, which a slow-hashed token would add to every request. Bounded:
a few seconds on 2 cores.

    python benchmarks/api_tokens.py [--requests 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp
from _app import sign_in, sqlite_app


async def _latencies(http: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    found = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(f"{url}/api/machines") as response:
            assert response.status == 200, await response.text()
            await response.read()
        found.append(1000 * (time.perf_counter() - started))
    return sorted(found)


def _summary(name: str, ms: list[float]) -> str:
    p95 = ms[int(0.95 * (len(ms) - 1))]
    return f"  {name}: median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms"


async def run(requests: int) -> None:
    """Start the app, time both kinds of request, and print the figures."""
    async with sqlite_app() as app:
        hasher = app.hasher
        _, secret = await app.backend.create_api_token(app.alice, "benchmark")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await sign_in(http, app.url)
            cookie = await _latencies(http, app.url, requests)
        headers = {"Authorization": f"Bearer {secret}"}
        async with aiohttp.ClientSession(headers=headers) as http:
            bearer = await _latencies(http, app.url, requests)
    stored = hasher.hash(secret)
    started = time.perf_counter()
    hasher.verify(stored, secret)
    argon2_ms = 1000 * (time.perf_counter() - started)
    print(f"GET /api/machines x{requests}, SQLite, one client at a time:")
    print(_summary("session cookie", cookie))
    print(_summary("API token (SHA-256)", bearer))
    print(f"  one argon2 verification (production parameters): {argon2_ms:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--requests", type=int, default=300, help="requests of each kind (max 5000)"
    )
    args = parser.parse_args()
    asyncio.run(run(min(args.requests, 5000)))


if __name__ == "__main__":
    main()

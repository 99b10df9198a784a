"""How fast a long session's last answer reaches the browser, and how much is sent for it.

Seeds a SQLite data directory with one session of 10,000 messages (5,000
questions, each answered), starts the real ``orchestrator serve`` on loopback,
signs in over HTTP and measures, as the chat page does it:

* the session stream's first ``messages`` event (the newest page): time from
  the request and its size, against the size of the whole list (what the
  stream sent before history was paged);
* one earlier page through ``GET /api/sessions/{id}/messages?cursor=…``;
* the newest page's replies rendered as HTML (``/rendered``);
* in Debian's chromium (Playwright), the time from opening the chat page on
  the session until its last answer shows, rendered as Markdown.

Run from the repository root: ``python benchmarks/long_history.py`` (~15 s).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import expect, sync_playwright
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.harness import PASSWORD, Server, sign_in
from tests.e2e.test_long_history import TURNS, Seeded, seed_long_session

ROUNDS = 5


async def first_messages_event(http: aiohttp.ClientSession, url: str) -> tuple[float, int, Any]:
    """Seconds until the stream's first ``messages`` event is whole, its bytes and its data."""
    started = time.perf_counter()
    async with http.get(url) as stream:
        event, data = "", []
        async for raw in stream.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and event == "messages":
                body = "\n".join(data)
                return time.perf_counter() - started, len(body.encode()), json.loads(body)
            elif not line:
                event, data = "", []
    raise AssertionError("the stream ended before its first messages event")


async def timed_get(http: aiohttp.ClientSession, url: str) -> tuple[float, int, Any]:
    started = time.perf_counter()
    async with http.get(url) as response:
        body = await response.read()
        assert response.status == 200, body
    return time.perf_counter() - started, len(body), json.loads(body)


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


async def measure(server: Server, session_id: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        login = {"username": "alice", "password": PASSWORD}
        async with http.post(f"{server.url}/api/login", json=login) as response:
            assert response.status == 200, await response.text()
        base = f"{server.url}/api/sessions/{session_id}"
        streams = [await first_messages_event(http, f"{base}/stream") for _ in range(ROUNDS)]
        _, event_bytes, first = streams[-1]
        page_times, page_bytes = [], 0
        for _ in range(ROUNDS):
            took, page_bytes, _ = await timed_get(
                http, f"{base}/messages?cursor={first['earlier']}"
            )
            page_times.append(took)
        replies = [m["message_id"] for m in first["messages"] if m["role"] == "assistant"]
        query = "&".join(f"message_id={r}" for r in replies)
        render_times = [
            (await timed_get(http, f"{base}/rendered?{query}"))[0] for _ in range(ROUNDS)
        ]
        whole, cursor = 0, ""
        while True:  # the whole list, as the stream used to send it
            _, size, page = await timed_get(http, f"{base}/messages?limit=200{cursor}")
            whole += size
            if not page["cursor"]:
                break
            cursor = f"&cursor={page['cursor']}"
    print(f"session of {2 * TURNS} messages, median of {ROUNDS}:")
    print(
        f"  stream, first messages event: {median([s[0] for s in streams]) * 1000:.0f} ms,"
        f" {event_bytes:,} bytes, {len(first['messages'])} messages"
    )
    print(f"  one earlier page: {median(page_times) * 1000:.0f} ms, {page_bytes:,} bytes")
    print(f"  newest page's replies rendered: {median(render_times) * 1000:.0f} ms")
    print(f"  the whole list (sent on every change before paging): {whole:,} bytes")


def in_the_browser(server: Server, seeded: Seeded) -> None:
    """Seconds from opening the chat page until the session's last answer shows rendered."""
    url = (
        f"{server.url}/chat?machine={seeded.machine_id}&worker={seeded.worker_id}"
        f"&session={seeded.session_id}"
    )
    took = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            sign_in(page, server.url, "alice")
            last = page.locator("#messages li.msg").last.locator(".msg-text.md")
            for _ in range(ROUNDS):
                page.goto(f"{server.url}/")
                started = time.perf_counter()
                page.goto(url)
                expect(last).to_have_text(f"answer {TURNS - 1}", timeout=60_000)
                took.append(time.perf_counter() - started)
        finally:
            browser.close()
    print(f"  chromium, chat page opened until the last answer shows: {median(took):.2f} s")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        seeded = seed_long_session(data_dir, Path(tmp))
        server = Server(data_dir)
        server.start()
        try:
            asyncio.run(measure(server, seeded.session_id))
            in_the_browser(server, seeded)
        finally:
            server.stop()


if __name__ == "__main__":
    main()

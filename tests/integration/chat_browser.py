"""What the model sent, what a browser received and what was stored, compared token by token.

:class:`NumberedReplies` is the fake model's reply: every prompt is answered
with tokens numbered after the prompt (``s03q002t0007``), unique across a test,
and it records every reply it sent. :class:`ChatBrowser` is what a chat page
shows of a session, built only from the session's SSE stream, which
:func:`follow` reads the way ``EventSource`` does (reconnecting with
``Last-Event-ID``, starting over on a ``snapshot``). :func:`tally` counts the
tokens lost, duplicated and reordered between what was sent and what arrived.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import aiohttp
import anyio
import attrs
from yarl import URL

from tests.integration.harness import PASSWORD, sse_events

LOGIN = {"username": "alice", "password": PASSWORD}
FINAL = ("completed", "interrupted", "failed", "aborted")
#: Seconds without a byte after which a browser gives a stream up and reconnects.
STALLED_SECONDS = 60.0


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    said = [m for m in messages if m.get("role") == "user"]
    content = said[-1]["content"] if said else ""
    if isinstance(content, list):
        content = "".join(str(part.get("text", "")) for part in content)
    return str(content)


@attrs.define
class NumberedReplies:
    """The fake model's reply: ``tokens`` numbered words per prompt; records each reply sent."""

    tokens: int = 20
    #: Every reply sent for each prompt, in order (more than one would be a retried prompt).
    sent: dict[str, list[str]] = attrs.field(factory=dict)

    def __call__(self, messages: Sequence[Mapping[str, Any]]) -> str:
        prompt = _last_user_text(messages)
        tag = re.sub(r"\W", "", prompt) or "empty"
        reply = "".join(f"{tag}t{i:04d} " for i in range(1, self.tokens + 1))
        self.sent.setdefault(prompt, []).append(reply)
        return reply

    def reply_to(self, prompt: str) -> str:
        """The one reply sent for ``prompt`` (fails if it was sent never or twice)."""
        replies = self.sent.get(prompt, [])
        assert len(replies) == 1, f"{prompt!r} was answered {len(replies)} times"
        return replies[0]


@attrs.define
class ChatBrowser:
    """What a chat page shows of one session, from its stream only."""

    #: Each reply's text as the page shows it (chunks appended, or whole when fresh).
    texts: dict[str, str] = attrs.field(factory=dict)
    #: Sequences of the chunks received, in arrival order.
    sequences: list[int] = attrs.field(factory=list)
    messages: list[dict[str, Any]] = attrs.field(factory=list)
    snapshots: list[str] = attrs.field(factory=list)
    reconnects: int = 0
    signed_in: bool = False
    #: Whether a stream has delivered its first message list.
    connected: bool = False
    last: str | None = None
    fresh: bool = False

    def on(self, name: str, data: Any) -> None:
        if name == "snapshot":
            self.snapshots.append(data["reason"])
            self.texts, self.last, self.fresh = {}, None, True
        elif name == "chunk":
            message_id = data["message_id"]
            self.texts[message_id] = self.texts.get(message_id, "") + data["chunk"]
            self.sequences.append(data["sequence"])
        elif name == "messages":
            self.connected = True
            # The stream sends the newest page; like the page, keep what was shown before.
            shown = {m["message_id"]: m for m in self.messages}
            shown.update((m["message_id"], m) for m in data["messages"])
            self.messages = list(shown.values())
            if self.fresh:  # a fresh stream sends finished replies whole, not as chunks
                for message in self.replies:
                    if message["completed"]:
                        self.texts[message["message_id"]] = message["content"]
            self.fresh = False

    @property
    def replies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["role"] == "assistant"]

    def finished(self, count: int) -> bool:
        """Whether the page shows ``count`` replies that ended."""
        return len([r for r in self.replies if r["status"] in FINAL]) >= count

    def text_of(self, message_id: str) -> str:
        return self.texts.get(message_id, "")


async def follow(
    base: str,
    session_id: str,
    browser: ChatBrowser,
    done: Callable[[ChatBrowser], bool],
    source: str | None = None,
    cookies: Mapping[str, str] | None = None,
) -> None:
    """Read the session's stream until ``done(browser)``, reconnecting like EventSource.

    Like a browser tab it holds one connection: sign-in and stream share it.
    ``source`` is the loopback address it connects from (127.0.0.0/8 is all
    loopback), so many browsers are many clients to the server, as they would be.
    With ``cookies`` (a signed-in client's) it is signed in already, like one
    more tab of the same browser, so many of them do not each sign in.
    """
    local = (source, 0) if source is not None else None
    connector = aiohttp.TCPConnector(limit=1, local_addr=local)
    jar = aiohttp.CookieJar(unsafe=True)
    # A stream stays open as long as it lives (aiohttp's default cuts every request at
    # 5 minutes); one silent past a minute, with keepalives every 15 s, is reconnected.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=STALLED_SECONDS)
    if cookies is not None:
        jar.update_cookies(cookies, URL(base))
        browser.signed_in = True
    async with (
        aiohttp.ClientSession(connector=connector, cookie_jar=jar, timeout=timeout) as http,
        anyio.create_task_group() as tg,
    ):

        async def read() -> None:
            while True:
                with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                    await _read_stream(http, base, session_id, browser)
                browser.reconnects += 1
                await anyio.sleep(0.2)

        tg.start_soon(read)
        # Checked on a clock too: the last event may have come before ``done`` turned true.
        while not done(browser):
            await anyio.sleep(0.05)
        tg.cancel_scope.cancel()


async def _read_stream(
    http: aiohttp.ClientSession, base: str, session_id: str, browser: ChatBrowser
) -> None:
    if not browser.signed_in:  # once, like a browser keeping its cookie
        async with http.post(f"{base}/api/login", json=LOGIN) as answer:
            await answer.read()  # read whole, so the connection is reused
            browser.signed_in = answer.status == 200
            if not browser.signed_in:
                return
    headers = {"Last-Event-ID": browser.last} if browser.last else {}
    url = f"{base}/api/sessions/{session_id}/stream"
    async with http.get(url, headers=headers) as response:
        if response.status != 200:
            browser.signed_in = response.status != 401
            return
        browser.fresh = browser.last is None
        async for event in sse_events(response.content):
            browser.last = event.id or browser.last
            browser.on(event.name, event.data)


def assert_answered_exactly(
    prompts: list[str], model: NumberedReplies, browser: ChatBrowser, stored: list[dict[str, Any]]
) -> None:
    """Each prompt answered once, completed, in order: model == browser == stored, exactly."""
    assert [r["status"] for r in stored] == ["completed"] * len(prompts), stored
    for prompt, reply in zip(prompts, stored, strict=True):
        sent = model.reply_to(prompt)
        assert reply["content"] == sent
        assert browser.text_of(reply["message_id"]) == sent
    assert browser.sequences == sorted(set(browser.sequences))


@attrs.frozen
class Tally:
    """Tokens of what the model sent that arrived lost, duplicated or out of order."""

    tokens: int
    lost: int
    duplicated: int
    reordered: int

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.tokens + other.tokens,
            self.lost + other.lost,
            self.duplicated + other.duplicated,
            self.reordered + other.reordered,
        )


def tally(sent: str, got: str) -> Tally:
    """Compare two texts as token lists: lost, duplicated (or unknown) and reordered tokens."""
    want, have = sent.split(), got.split()
    position = {token: i for i, token in enumerate(want)}
    counts = Counter(have)
    lost = sum(1 for token in want if token not in counts)
    duplicated = sum(n - 1 for n in counts.values()) + sum(
        1 for token in counts if token not in position
    )
    order = [position[token] for token in dict.fromkeys(have) if token in position]
    reordered = sum(1 for a, b in pairwise(order) if b < a)
    return Tally(len(want), lost, duplicated, reordered)

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

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise
from typing import Any

import aiohttp
import anyio
import attrs

LOGIN = {"username": "alice", "password": "correct horse battery"}
FINAL = ("completed", "interrupted", "failed", "aborted")


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
    last: str | None = None
    _fresh: bool = False

    def on(self, name: str, data: Any) -> None:
        if name == "snapshot":
            self.snapshots.append(data["reason"])
            self.texts, self.last, self._fresh = {}, None, True
        elif name == "chunk":
            message_id = data["message_id"]
            self.texts[message_id] = self.texts.get(message_id, "") + data["chunk"]
            self.sequences.append(data["sequence"])
        elif name == "messages":
            self.messages = data["messages"]
            if self._fresh:  # a fresh stream sends finished replies whole, not as chunks
                for message in self.replies:
                    if message["completed"]:
                        self.texts[message["message_id"]] = message["content"]
            self._fresh = False

    @property
    def replies(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["role"] == "assistant"]

    def finished(self, count: int) -> bool:
        """Whether the page shows ``count`` replies that ended."""
        return len([r for r in self.replies if r["status"] in FINAL]) >= count

    def text_of(self, message_id: str) -> str:
        return self.texts.get(message_id, "")


async def follow(
    base: str, session_id: str, browser: ChatBrowser, done: Callable[[ChatBrowser], bool]
) -> None:
    """Read the session's stream until ``done(browser)``, reconnecting like EventSource."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        first = True
        while not done(browser):
            if not first:
                browser.reconnects += 1
                await anyio.sleep(0.2)
            first = False
            try:
                async with http.post(f"{base}/api/login", json=LOGIN) as answer:
                    if answer.status != 200:
                        continue
                headers = {"Last-Event-ID": browser.last} if browser.last else {}
                url = f"{base}/api/sessions/{session_id}/stream"
                async with http.get(url, headers=headers) as response:
                    if response.status != 200:
                        continue
                    browser._fresh = browser.last is None
                    name = ""
                    async for raw in response.content:
                        line = raw.decode().rstrip("\n")
                        if line.startswith("event: "):
                            name = line[7:]
                        elif line.startswith("id: "):
                            browser.last = line[4:]
                        elif line.startswith("data: "):
                            browser.on(name, json.loads(line[6:]))
                            if done(browser):
                                return
            except (aiohttp.ClientError, ConnectionError):
                continue


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

"""A soak with real processes: 20 chat sessions streaming at once for ten minutes.

``orchestrator serve``, one ``orchestrator worker start`` and its real opencode
answer 20 sessions that each send message after message; the fake model
streams every reply token by token, slowly, so the load stays small while the
stream runs long. A browser-like client follows each session's SSE stream.
At the end, for every reply, what the model sent, what the browser received,
the stored message and the stored chunks are compared token by token: nothing
lost, duplicated or reordered. The stored history is read whole, page by page
(a session of ~40 turns holds more messages than the stream's newest page).

``ORCHESTRATOR_SOAK_SECONDS`` (default 600) sets how long and
``ORCHESTRATOR_SOAK_TOKEN_DELAY`` (default 0.3) the seconds between tokens: a short
run with a small delay still makes sessions longer than a page.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import anyio
import attrs
import pytest

from tests.integration.chat_browser import ChatBrowser, NumberedReplies, Tally, follow, tally
from tests.integration.chat_stage import Api, ready_worker, signed_in, stage
from tests.integration.harness import NEEDS_OPENCODE, Output, stop

SESSIONS = 20
#: Tokens per reply; at 0.3 s between them 20 sessions stream ~60 tokens a second in all.
TOKENS_PER_REPLY = 40


def soak_seconds() -> float:
    """How long the sessions keep sending: ``ORCHESTRATOR_SOAK_SECONDS``, else 600."""
    return float(os.environ.get("ORCHESTRATOR_SOAK_SECONDS", "600"))


def token_delay() -> float:
    """Seconds between a reply's tokens: ``ORCHESTRATOR_SOAK_TOKEN_DELAY``, else 0.3."""
    return float(os.environ.get("ORCHESTRATOR_SOAK_TOKEN_DELAY", "0.3"))


@attrs.define
class SoakSession:
    """One session of the soak: its id, the prompts it sent and what its browser saw."""

    number: int
    session_id: str
    prompts: list[str] = attrs.field(factory=list)
    browser: ChatBrowser = attrs.field(factory=ChatBrowser)
    sending: bool = True

    def done(self, browser: ChatBrowser) -> bool:
        return not self.sending and browser.finished(len(self.prompts))


async def _converse(api: Api, session: SoakSession, until: float) -> None:
    """Send message after message, each once the previous reply ended, until ``until``."""
    while time.monotonic() < until:
        prompt = f"s{session.number:02d}q{len(session.prompts) + 1:03d}"
        session.prompts.append(prompt)
        await api.send(session.session_id, prompt)
        with anyio.move_on_after(120):
            while not session.browser.finished(len(session.prompts)):
                await anyio.sleep(0.1)
        shown = [(r["status"], len(r["content"])) for r in session.browser.replies]
        assert session.browser.finished(len(session.prompts)), (
            f"session {session.number}: {prompt} not answered within 120 s; the browser "
            f"shows {shown} after {session.browser.reconnects} reconnects"
        )
    session.sending = False


async def _compare(api: Api, session: SoakSession, model: NumberedReplies) -> dict[str, Tally]:
    """Tally the browser's text, the whole stored history and the stored chunks against the model.

    Every reply the model sent for the session is compared: none is left out.
    """
    count = len(session.prompts)
    messages = await api.history(session.session_id)
    stored_chunks = await api.stored_chunks(session.session_id)
    replies = [m for m in messages if m["role"] == "assistant"]
    assert [m["content"] for m in messages if m["role"] == "user"] == session.prompts
    assert [r["status"] for r in replies] == ["completed"] * count
    tag = f"s{session.number:02d}q"
    made = sum(len(found) for prompt, found in model.sent.items() if prompt.startswith(tag))
    assert len(replies) == made, f"session {session.number}: {len(replies)} of {made} compared"
    totals = {
        "browser": Tally(0, 0, 0, 0),
        "stored": Tally(0, 0, 0, 0),
        "chunks": Tally(0, 0, 0, 0),
    }
    for prompt, reply in zip(session.prompts, replies, strict=True):
        sent = model.reply_to(prompt)
        got = {
            "browser": session.browser.text_of(reply["message_id"]),
            "stored": reply["content"],
            "chunks": stored_chunks.get(reply["message_id"], ""),
        }
        for where, text in got.items():
            totals[where] += tally(sent, text)
            assert text == sent, f"{where} of {prompt}"
    sequences = session.browser.sequences
    assert sequences == sorted(set(sequences)), f"session {session.number} reordered chunks"
    return totals


@pytest.mark.slow
@pytest.mark.anyio
@NEEDS_OPENCODE
async def test_twenty_sessions_streaming_for_minutes_lose_duplicate_and_reorder_nothing(
    tmp_path: Path,
) -> None:
    """20 sessions streaming numbered tokens: browser, stored text and chunks == model, exactly."""
    model = NumberedReplies(tokens=TOKENS_PER_REPLY)
    seconds = soak_seconds()
    with stage(tmp_path, reply=model, delta_delay=token_delay()) as s:
        machine = Output(s.worker())  # its output is drained, so a long run never fills the pipe
        try:
            machine.wait_for(r"Machine .* is online")
            async with signed_in(s.server) as api:
                worker_id, model_name = await ready_worker(api, s.token.split(":")[0])
                sessions = []
                for number in range(1, SESSIONS + 1):
                    created = await api.call(
                        "POST", f"/api/workers/{worker_id}/sessions", {"model": model_name}, 201
                    )
                    session_id = str(created.get("session", created)["chat_session_id"])
                    sessions.append(SoakSession(number, session_id))
                cookies = {cookie.key: cookie.value for cookie in api.http.cookie_jar}
                async with anyio.create_task_group() as tg:
                    for session in sessions:
                        # Each browser its own client address, as 20 browsers would be.
                        source = f"127.0.0.{10 + session.number}"
                        args = (s.server.url, session.session_id, session.browser, session.done)
                        tg.start_soon(follow, *args, source, cookies)
                    with anyio.fail_after(60):  # every browser watches before the first message
                        while not all(session.browser.connected for session in sessions):
                            await anyio.sleep(0.1)
                    started = time.monotonic()
                    for session in sessions:
                        tg.start_soon(_converse, api, session, started + seconds)
                elapsed = time.monotonic() - started
                totals = {
                    "browser": Tally(0, 0, 0, 0),
                    "stored": Tally(0, 0, 0, 0),
                    "chunks": Tally(0, 0, 0, 0),
                }
                for session in sessions:
                    for where, found in (await _compare(api, session, model)).items():
                        totals[where] += found
            replies = sum(len(session.prompts) for session in sessions)
            fewest = min(len(session.prompts) for session in sessions)
            reconnects = sum(session.browser.reconnects for session in sessions)
            print(
                f"\nsoak: {SESSIONS} sessions, {elapsed:.0f} s, {replies} replies "
                f"({2 * fewest}+ messages each), "
                f"{totals['stored'].tokens} tokens, {reconnects} browser reconnects; "
                + "; ".join(
                    f"{where} lost {t.lost} dup {t.duplicated} reordered {t.reordered}"
                    for where, t in totals.items()
                )
            )
        finally:
            stop(machine.process)
        assert machine.process.returncode == 0, machine.text

"""Faults of opencode itself mid-reply, with real parts: server, ``worker start``, opencode, model.

The real opencode process under the machine process (not the reaper that starts
it) is sent SIGKILL, or SIGSTOP and later SIGCONT, while it streams a reply of
numbered tokens. A browser follows the session's stream throughout; what it
showed, the stored history, the stored chunks and what the model sent are then
compared token by token, and the next message of the session must be answered.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orchestrator.adapters.opencode._runtime import DIED_REASON
from tests.integration.chat_browser import (
    ChatBrowser,
    NumberedReplies,
    assert_answered_exactly,
    follow,
)
from tests.integration.chat_stage import Api, Stage, open_session, signed_in, stage
from tests.integration.faults import in_order_once, until
from tests.integration.harness import Output, opencode_processes, stop

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

#: Tokens of the reply a fault hits, and of the reply to the next message.
LONG, SHORT = 300, 30
#: Seconds opencode stays stopped: longer than the whole reply takes to stream.
STOPPED_SECONDS = 10.0


@attrs.define
class Conversation:
    """A session on real processes with a browser following its stream."""

    stage: Stage
    api: Api
    machine: Output
    model: NumberedReplies
    session_id: str
    browser: ChatBrowser
    prompts: list[str] = attrs.field(factory=list)

    async def send(self, prompt: str) -> None:
        """Send ``prompt`` as the session's next message."""
        self.prompts.append(prompt)
        path = f"/api/sessions/{self.session_id}/messages"
        await self.api.call("POST", path, {"content": prompt}, 201)

    def shown_words(self) -> int:
        """Words of reply text the browser shows."""
        return sum(text.count(" ") for text in self.browser.texts.values())

    def opencode(self) -> int:
        """The one opencode process the machine process runs now."""
        [pid] = opencode_processes(self.machine.process.pid)
        return pid

    async def answered(self, count: int) -> None:
        """Wait until the browser shows ``count`` replies ended."""
        await until(lambda: self.browser.finished(count), 120)

    async def stored(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The stored replies (the prompts checked in order) and each one's stored chunks."""
        history = await self.api.history(self.session_id)
        assert [m["content"] for m in history if m["role"] == "user"] == self.prompts
        replies = [m for m in history if m["role"] == "assistant"]
        return replies, await self.api.stored_chunks(self.session_id)


@asynccontextmanager
async def conversation(tmp_path: Path) -> AsyncIterator[Conversation]:
    """A machine process with opencode, a session, and a browser following it until the end."""
    model = NumberedReplies(tokens=LONG)
    with stage(tmp_path, reply=model, delta_delay=0.02) as s:
        machine = Output(s.worker())
        try:
            machine.wait_for(r"Machine .* is online")
            async with signed_in(s.server) as api, anyio.create_task_group() as tg:
                session_id = await open_session(api, s.token)
                browser = ChatBrowser()
                tg.start_soon(follow, s.server.url, session_id, browser, lambda _: False)
                await until(lambda: browser.connected)
                yield Conversation(s, api, machine, model, session_id, browser)
                tg.cancel_scope.cancel()
        finally:
            stop(machine.process)
        assert machine.process.returncode == 0, machine.text


@pytest.mark.parametrize("queued", [False, True], ids=["sent-after", "queued-before"])
async def test_opencode_killed_mid_reply_fails_it_with_its_text_and_the_next_is_answered(
    tmp_path: Path, queued: bool
) -> None:
    """SIGKILL of opencode mid-reply: failed, shown == stored prefix; restarted; next whole.

    The next message is sent once the reply failed, or while it still streamed.
    """
    async with conversation(tmp_path) as chat:
        await chat.send("first")
        await until(lambda: chat.shown_words() >= 40)
        chat.model.tokens = SHORT  # the first reply is made already
        if queued:
            await chat.send("second")
        killed = chat.opencode()
        os.kill(killed, signal.SIGKILL)
        await chat.answered(1)
        if not queued:
            await chat.send("second")
        await chat.answered(2)
        assert chat.opencode() != killed  # the machine process started opencode again
        (failed, answered), chunks = await chat.stored()
    assert (failed["status"], failed["error"]) == ("failed", DIED_REASON), failed
    sent = chat.model.reply_to("first")
    text = failed["content"]
    print(f"\nopencode killed: the reply ended failed at {text.count(' ')} of {LONG} words")
    assert text.count(" ") >= 40, "the reply lost text the browser had shown"
    assert in_order_once(text, sent) == ""
    assert sent.startswith(text)
    assert chat.browser.text_of(failed["message_id"]) == text
    assert chunks[failed["message_id"]] == text
    assert_answered_exactly(["second"], chat.model, chat.browser, [answered])
    assert chunks[answered["message_id"]] == answered["content"]


async def test_opencode_stopped_mid_reply_finishes_it_whole_once_continued(
    tmp_path: Path,
) -> None:
    """SIGSTOP of opencode mid-reply, SIGCONT after 10 s: the reply ends whole; the next too."""
    async with conversation(tmp_path) as chat:
        await chat.send("first")
        await until(lambda: chat.shown_words() >= 40)
        stopped = chat.opencode()
        os.kill(stopped, signal.SIGSTOP)
        try:
            await anyio.sleep(STOPPED_SECONDS)
            state = Path(f"/proc/{stopped}/stat").read_text().rsplit(") ", 1)[1][0]
            assert state == "T", f"opencode is in state {state}, not stopped"
            # The reply streams for ~6 s: it can only have ended if opencode never stopped.
            assert not chat.browser.finished(1), "the reply ended while opencode was stopped"
        finally:
            os.kill(stopped, signal.SIGCONT)
        await chat.answered(1)
        chat.model.tokens = SHORT
        await chat.send("second")
        await chat.answered(2)
        assert chat.opencode() == stopped  # the same opencode carried on
        replies, chunks = await chat.stored()
    assert_answered_exactly(["first", "second"], chat.model, chat.browser, replies)
    for reply in replies:
        assert chunks[reply["message_id"]] == reply["content"]

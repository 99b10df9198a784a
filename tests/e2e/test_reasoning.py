"""A reply's reasoning on the chat page, in a real browser, growing live by appended deltas."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from playwright.sync_api import Page, expect

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.remote.live import LiveOutbox
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId
from orchestrator.domain.live import LiveText
from orchestrator.domain.parts import PartId, TextKind
from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, call_api, open_new_session

pytestmark = pytest.mark.slow

PIECES = ["Let ", "me ", "think ", "about ", "it."]


async def _think(url: str, token: str, session_id: str, message_id: str) -> None:
    """The machine's live channel sends reasoning deltas for the reply, as opencode's would."""
    async with RemoteMachineBackend(url) as remote:
        outbox = LiveOutbox(remote, MachineToken.parse(token))
        async with anyio.create_task_group() as tg:
            tg.start_soon(outbox.run)
            offset = 0
            for piece in PIECES:
                delta = LiveText(
                    ChatSessionId(session_id),
                    MessageId(message_id),
                    PartId("prt_think_e2e"),
                    TextKind.REASONING,
                    offset,
                    piece,
                )
                await outbox.send(delta)
                offset += len(piece)
            await outbox.drain(ChatSessionId(session_id))
            tg.cancel_scope.cancel()


def test_reasoning_grows_in_its_folded_block_as_deltas_arrive(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """Reasoning deltas of a streaming reply (the later ones sent as appends) fill the
    folded Thinking block with the whole text, kept after a reload."""
    model.bash_command, model.after_tool_reply = "echo hi", "It ran."
    open_new_session(page, chat)
    box = page.get_by_label("Message", exact=True)
    box.fill("Think, then run it")
    box.press("Enter")
    reply = page.locator(".msg.assistant").last
    allow = reply.locator(".prompt").get_by_role("button", name="Allow once")
    allow.wait_for(timeout=60_000)  # the reply streams while it waits for the answer
    message_id = reply.get_attribute("data-key")
    assert message_id
    _, listed = call_api(page, "GET", f"/api/workers/{chat.worker_id}/sessions")
    [session] = listed["sessions"]
    args = (chat.server.url, chat.token, session["chat_session_id"], message_id)
    with ThreadPoolExecutor(1) as pool:  # the page's own event loop runs in this thread
        pool.submit(lambda: anyio.run(_think, *args)).result(timeout=60)
    thinking = reply.locator(".part.reasoning")
    expect(thinking.locator(".reasoning-text")).to_have_text("".join(PIECES))
    expect(thinking.locator("summary")).to_have_text("Thinking")
    allow.click()
    expect(reply).to_have_attribute("data-status", "completed", timeout=60_000)
    page.reload()
    stored = page.locator(".msg.assistant").last.locator(".part.reasoning .reasoning-text")
    expect(stored).to_have_text("".join(PIECES), timeout=30_000)

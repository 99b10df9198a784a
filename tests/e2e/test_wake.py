"""A page hidden (a phone asleep) and shown again catches up on the reply without a gap."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat
from tests.e2e.test_resilience import (
    REPLY,
    STREAMED_TEXT,
    expect_whole_stream,
    reply_through_proxy,
)

pytestmark = pytest.mark.slow

# Headless Chromium never hides a page by itself; the test sets what the page reads.
SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_a_page_shown_again_reconnects_at_once_and_resumes_from_its_last_chunk(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """Hidden while the network is gone; shown again, it resumes after its last sequence."""
    with reply_through_proxy(page, chat, model) as (proxy, reply):
        page.evaluate(SET_VISIBILITY, "hidden")
        proxy.cut()
        expect(page.locator("#connection")).to_have_text("Reconnecting…")
        seen = page.evaluate(STREAMED_TEXT)
        page.wait_for_timeout(1000)  # the reply goes on without the page
        proxy.restore()
        with page.expect_request(lambda r: "/stream?after=" in r.url) as resumed:
            page.evaluate(SET_VISIBILITY, "visible")
        assert REPLY.startswith(seen)
        assert int(resumed.value.url.rsplit("=", 1)[1]) > 0
        expect(page.locator("#connection")).to_be_hidden(timeout=30_000)
        expect_whole_stream(page, reply, "word150")

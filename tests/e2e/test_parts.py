"""A reply's tool calls on the chat page, in a real browser, from a real opencode turn."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, open_new_session

pytestmark = pytest.mark.slow

CONTENT = "written by the agent\n"


def test_a_tool_call_shows_its_name_title_and_state(
    page: Page, chat: Chat, model: FakeModelServer, tmp_path: Path
) -> None:
    """The write tool shows as a card ending "completed"; the file is on disk; markup stays text."""
    target = tmp_path / "projects" / "app" / "<b>notes</b>.txt"
    model.write_file = (str(target), CONTENT)
    model.before_tool_reply = "Writing the file. "
    model.after_tool_reply = "The file is written."
    open_new_session(page, chat)
    box = page.get_by_label("Message", exact=True)
    box.fill("Write the notes")
    box.press("Enter")
    # The worker's default policy asks before an edit: allow it from the card.
    page.get_by_role("button", name="Allow once").click(timeout=60_000)
    reply = page.locator(".msg.assistant").last
    card = reply.locator(".tool-card")
    expect(card).to_have_attribute("data-state", "completed", timeout=60_000)
    expect(card.locator(".tool-name")).to_have_text("write")
    expect(card.locator(".tool-title")).to_contain_text("<b>notes</b>.txt")  # as text, inert
    expect(card.locator(".tool-state")).to_have_text("completed")
    expect(reply).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(reply.locator(".msg-body")).to_contain_text("The file is written.")
    assert target.read_text() == CONTENT
    # Reloading the page shows the card again, from the stored parts.
    page.reload()
    page.locator(".msg.assistant").last.wait_for()
    expect(page.locator(".msg.assistant .tool-card")).to_have_attribute(
        "data-state", "completed", timeout=30_000
    )

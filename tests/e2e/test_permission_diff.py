"""An edit permission in a real browser: real opencode asks to write a file (the worker's
default policy asks before edits), and the chat card and the inbox show the file and its diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orchestrator.domain.diffs import MAX_DIFF_BYTES
from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, open_new_session, screenshots

pytestmark = pytest.mark.slow

#: A file name and content that would run script if any of it went into the page as HTML.
NAME = "<img src=x onerror=window.pwned=1>.txt"
CONTENT = "<script>window.pwned = 2</script>\nhello <b>diff</b>\n"


def _ask_to_write(page: Page, chat: Chat, model: FakeModelServer, target: Path, text: str) -> None:
    model.tool_calls = [("write", {"filePath": str(target), "content": text})]
    model.after_tool_reply = "Written."
    open_new_session(page, chat)
    box = page.get_by_label("Message", exact=True)
    box.fill("Write the file")
    box.press("Enter")


def test_an_edit_permission_shows_the_file_and_diff_in_the_chat_and_the_inbox(
    page: Page, chat: Chat, model: FakeModelServer, tmp_path: Path
) -> None:
    """The chat card and the inbox item show the file and its diff as text; allowing writes."""
    target = tmp_path / "projects" / "app" / NAME
    _ask_to_write(page, chat, model, target, CONTENT)
    prompt = page.locator(".msg.assistant").last.locator(".prompt")
    expect(prompt).to_be_visible(timeout=60_000)
    expect(prompt).to_contain_text("The agent wants to use edit")
    shown = prompt.locator(".permission-diff")
    expect(shown.locator(".diff-name")).to_have_text(str(target))
    expect(shown).to_have_js_property("open", True)  # a short diff is unfolded
    expect(shown.locator(".diff-add-count")).to_have_text("+2")
    added = shown.locator(".diff-add")
    expect(added.first).to_have_text("+<script>window.pwned = 2</script>")
    expect(added.nth(1)).to_have_text("+hello <b>diff</b>")
    screenshots(page, "permission-diff-chat")

    page.goto(f"{chat.server.url}/inbox")
    item = page.get_by_role("group", name="edit on laptop")
    expect(item).to_be_visible(timeout=30_000)
    listed = item.locator(".permission-diff")
    expect(listed.locator(".diff-name")).to_have_text(str(target))
    expect(listed.locator(".diff-add").first).to_have_text("+<script>window.pwned = 2</script>")
    assert page.locator("img, script:not([src])").count() == 0  # nothing the agent sent ran
    assert page.evaluate("window.pwned") is None
    screenshots(page, "permission-diff-inbox")
    session_url = item.get_by_role("link", name="open the session").get_attribute("href")
    item.get_by_role("button", name="Allow once").click()
    expect(item).to_be_hidden()
    page.goto(f"{chat.server.url}{session_url}")
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    assert target.read_text() == CONTENT


def test_a_long_edit_diff_is_folded_and_says_it_was_cut(
    page: Page, chat: Chat, model: FakeModelServer, tmp_path: Path
) -> None:
    """A diff over the bound arrives cut: the card is folded and names the whole diff's size."""
    target = tmp_path / "projects" / "app" / "big.txt"
    content = "".join(f"line {i} of a long file\n" for i in range(4000))  # ~100 kB of diff
    _ask_to_write(page, chat, model, target, content)
    shown = page.locator(".msg.assistant").last.locator(".prompt .permission-diff")
    expect(shown).to_be_visible(timeout=60_000)
    expect(shown).to_have_js_property("open", False)
    expect(shown.locator(".diff-name")).to_have_text(str(target))
    shown.locator("summary").click()
    note = shown.locator(".diff-note")
    expect(note).to_contain_text("diff truncated")
    size = int(note.inner_text().split("diff truncated, ")[1].split(" bytes")[0])
    assert size > MAX_DIFF_BYTES
    expect(shown.locator(".diff-add").first).to_have_text("+line 0 of a long file")

    # The inbox redraws its items every 30 s: a diff the user opened stays open.
    page.clock.install()
    page.goto(f"{chat.server.url}/inbox")
    listed = page.get_by_role("group", name="edit on laptop").locator(".permission-diff")
    expect(listed).to_have_js_property("open", False, timeout=30_000)
    listed.locator("summary").click()
    expect(listed).to_have_js_property("open", True)
    listed.evaluate("node => node.setAttribute('data-drawn', 'before')")
    page.clock.run_for(31_000)
    redrawn = page.get_by_role("group", name="edit on laptop").locator(".permission-diff")
    expect(redrawn).not_to_have_attribute("data-drawn", "before")  # a new card was drawn
    expect(redrawn).to_have_js_property("open", True)

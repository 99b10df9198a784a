"""A reply's tool calls on the chat page, in a real browser, from a real opencode turn."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, call_api, open_new_session, screenshots, send

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
    reply = send(page, "Write the notes")
    # The worker's policy asks before an edit.
    reply.locator(".prompt").get_by_role("button", name="Allow once").click(timeout=60_000)
    card = reply.locator(".tool-card")
    expect(card).to_have_attribute("data-state", "completed", timeout=60_000)
    expect(card.locator(".tool-name")).to_have_text("write")
    expect(card.locator(".tool-title")).to_contain_text("<b>notes</b>.txt")  # as text, inert
    expect(card.locator(".tool-state")).to_have_text("completed")
    expect(card.locator(".tool-time")).to_contain_text("in ")
    expect(reply).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(reply.locator(".msg-body")).to_contain_text("The file is written.")
    assert target.read_text() == CONTENT
    # Reloading the page shows the card again, from the stored parts.
    page.reload()
    page.locator(".msg.assistant").last.wait_for()
    expect(page.locator(".msg.assistant .tool-card")).to_have_attribute(
        "data-state", "completed", timeout=30_000
    )


def test_a_command_after_a_permission_shows_as_a_card_between_the_text(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """Allowed bash call: card between text, output inert in a fold, model and cost, on reload."""
    model.bash_command = "printf '<b>bold</b> \\033[31mred\\033[0m\\n'"
    model.before_tool_reply = "Running it."
    model.after_tool_reply = "It printed **red**."
    open_new_session(page, chat)
    reply = send(page, "Run the command")
    prompt = reply.locator(".prompt")
    prompt.get_by_role("button", name="Allow once").click(timeout=60_000)
    card = reply.locator(".tool-card")
    expect(card).to_have_attribute("data-state", "completed", timeout=60_000)
    expect(reply).to_have_attribute("data-status", "completed", timeout=30_000)

    def check_reply() -> None:
        expect(card.locator(".tool-name")).to_have_text("bash")
        expect(card.locator(".tool-title")).to_contain_text("printf")
        output = card.locator("details[data-fold=output]")
        expect(output.locator("pre")).not_to_be_visible()  # folded until asked
        output.locator("summary").click()
        expect(output.locator("pre")).to_have_text("<b>bold</b> red\n")  # as text, no escapes
        expect(output.locator("b")).to_have_count(0)
        # The text before the call, the card, the text after it: in the order they happened.
        order = reply.locator(".msg-body > *").evaluate_all(
            "(els) => els.map((e) => e.classList.contains('tool-card') ? 'card' : e.textContent)"
        )
        assert [o.strip() for o in order] == ["Running it.", "card", "It printed red."]
        expect(reply.locator(".msg-text strong")).to_have_text("red")
        # The reply's model, then its tokens and cost; the browser's JSON names the model too.
        expect(reply.locator(".msg-usage")).to_contain_text(f"{chat.model} · ")
        expect(reply.locator(".msg-usage")).to_contain_text("tokens in")
        expect(page.locator(".session-usage")).to_contain_text("tokens in")
        session_id = parse_qs(urlparse(page.url).query)["session"][0]
        _, found = call_api(page, "GET", f"/api/sessions/{session_id}/messages")
        assert [m["model"] for m in found["messages"]] == [None, chat.model]

    check_reply()
    screenshots(page, "conversation-cards")
    page.reload()
    reply = page.locator(".msg.assistant").last
    card = reply.locator(".tool-card")
    expect(card).to_have_attribute("data-state", "completed", timeout=30_000)
    expect(reply.locator(".msg-text.md")).to_have_count(2, timeout=30_000)
    check_reply()
    expect(reply.locator(".prompt .prompt-actions")).to_have_text("Allowed once.")
    # The worker's page shows what its agent used, over its sessions.
    page.goto(f"{chat.server.url}/machines/{chat.machine_id}")
    expect(page.locator(f'[data-key="{chat.worker_id}"] .worker-usage')).to_contain_text(
        "tokens in", timeout=30_000
    )


def test_a_denied_command_shows_its_card_and_answer_not_no_text(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """A reply ended by a denied permission shows the failed call and "Denied.", also on reload."""
    model.bash_command = "rm -rf build"
    model.before_tool_reply = ""
    open_new_session(page, chat)
    reply = send(page, "Clean up")
    reply.locator(".prompt").get_by_role("button", name="Deny").click(timeout=60_000)
    expect(reply).to_have_attribute("data-status", re.compile("completed|failed"), timeout=60_000)
    for _ in range(2):
        card = reply.locator(".tool-card")
        expect(card).to_have_attribute("data-state", "error", timeout=30_000)
        expect(card.locator(".tool-error")).not_to_be_empty()
        expect(reply.locator(".prompt .prompt-actions")).to_have_text("Denied.")
        expect(reply.locator(".msg-body")).not_to_contain_text("(no text)")
        page.reload()
        reply = page.locator(".msg.assistant").last


TODOS = [
    {"content": "Read the <b>notes</b>", "status": "completed", "priority": "high"},
    {"content": "Write the tests", "status": "in_progress", "priority": "high"},
    {"content": "Ship it", "status": "pending", "priority": "low"},
]


def test_the_agents_todo_list_shows_beside_the_conversation(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """A todowrite call fills the todo panel live (markup as text); it is there again on reload."""
    model.todos = TODOS
    model.before_tool_reply = "Planning the work."
    model.after_tool_reply = "I have a plan."
    open_new_session(page, chat)
    send(page, "Plan the work")
    panel = page.locator("#todo-panel")
    for reload in (False, True):
        if reload:
            page.reload()
        expect(panel).to_be_visible(timeout=60_000)
        items = panel.locator(".todo")
        expect(items).to_have_count(3)
        expect(items.nth(0)).to_have_attribute("data-status", "completed")
        expect(items.nth(0).locator(".todo-text")).to_have_text("Read the <b>notes</b>")
        expect(items.nth(1).locator(".todo-status")).to_have_text("doing")
        expect(panel.locator(".todo-count")).to_have_text("1/3")
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", "completed", timeout=30_000
    )
    # opencode's own title (the fake model's), then the owner's; markup stays text.
    expect(page.locator("#session-title")).to_have_text(model.title, timeout=30_000)
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Session title").fill("Plan <i>v2</i>")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#session-title")).to_have_text("Plan <i>v2</i>")
    page.reload()
    expect(page.locator("#session-title")).to_have_text("Plan <i>v2</i>", timeout=30_000)
    screenshots(page, "todo-panel")

"""Agents, slash commands and the queue of unsent messages, in a real browser on real opencode."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, open_new_session

pytestmark = pytest.mark.slow


def _last_user_text(model: FakeModelServer) -> str:
    return json.dumps(model.chat_requests[-1].messages[-1])


def test_plan_agent_and_a_slash_command_reach_opencode(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """Choosing plan sends opencode's plan prompt; "/" lists commands and /review runs as one."""
    model.reply = "Noted."
    page.goto(f"{chat.server.url}/chat?machine={chat.machine_id}&worker={chat.worker_id}")
    page.get_by_label("Default agent").select_option("plan")
    page.get_by_role("button", name="New session").click()
    page.get_by_text("No messages yet").wait_for()
    expect(page.get_by_label("Agent for this message")).to_have_value("plan")
    expect(page.locator("#session-meta")).to_contain_text("plan")
    box = page.get_by_label("Message", exact=True)
    box.fill("Look around before changing anything")
    box.press("Enter")
    reply = page.locator(".msg.assistant").last
    expect(reply).to_have_attribute("data-status", "completed", timeout=60_000)
    assert "Plan mode ACTIVE" in _last_user_text(model)
    expect(page.locator(".msg.user").last).to_have_attribute("data-status", "completed")
    page.get_by_label("Agent for this message").select_option("build")

    box.fill("/rev")
    options = page.get_by_role("listbox", name="Commands").get_by_role("option")
    expect(options).to_have_text(["/review"])
    expect(box).to_have_attribute("aria-expanded", "true")
    box.press("Enter")  # picks the highlighted command, does not send
    expect(box).to_have_value("/review ")
    expect(page.get_by_role("listbox", name="Commands")).to_be_hidden()
    box.press_sequentially("the last commit")
    box.press("Enter")
    expect(page.locator(".msg.assistant")).to_have_count(2, timeout=30_000)
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    # opencode's own /review template (run by a review subtask), with the arguments in it.
    sent = [json.dumps(r.messages) for r in model.chat_requests]
    assert any("You are a code reviewer" in t and "the last commit" in t for t in sent)


def test_messages_sent_while_busy_are_queued_and_can_be_edited_or_cancelled(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """While a reply streams, two more messages show queued; one is edited, one cancelled."""
    model.reply = " ".join(f"word{i}" for i in range(30))  # ~12 s at this pace
    model.delta_delay = 0.4
    open_new_session(page, chat)
    box = page.get_by_label("Message", exact=True)
    box.fill("Start something long")
    box.press("Enter")
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", "streaming", timeout=60_000
    )
    for text in ("Then do this", "And this too"):
        box.fill(text)
        box.press("Enter")
    queued = page.locator(".msg.user[data-status=pending]")
    expect(queued).to_have_count(2)
    expect(queued.first.locator(".msg-status")).to_have_text("queued")

    queued.first.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Edit queued message")
    editor.fill("Then do this instead")
    page.get_by_role("button", name="Save").click()
    expect(queued.first.locator(".msg-body")).to_have_text("Then do this instead")
    queued.last.get_by_role("button", name="Cancel message").click()
    expect(page.locator(".msg.user")).to_have_count(2)

    model.delta_delay = 0.0
    expect(page.locator(".msg.assistant")).to_have_count(2, timeout=60_000)
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    expect(page.locator(".queue-actions")).to_have_count(0)
    user_texts = [r.user_texts[-1] for r in model.chat_requests]
    assert "Then do this instead" in user_texts
    assert not any("And this too" in t for t in user_texts)
    page.reload()
    expect(page.locator(".msg.user")).to_have_count(2, timeout=30_000)
    expect(page.locator(".msg.user").last).to_contain_text("Then do this instead")

"""A question the agent asks, answered in a real browser from a real opencode turn."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Locator, Page, Request, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, open_new_session, send
from tests.integration.test_opencode_questions import ASKED

pytestmark = pytest.mark.slow


POLLED = re.compile(r"/api/sessions/[^/]+/(permissions|questions)(\?|$)")


def _polls(page: Page) -> list[str]:
    """Requests the page makes for permissions or questions (it should make none: they stream)."""
    seen: list[str] = []

    def record(request: Request) -> None:
        if POLLED.search(request.url):
            seen.append(request.url)

    page.on("request", record)
    return seen


def _ask(page: Page, chat: Chat, model: FakeModelServer, after: str, before: str = "") -> Locator:
    """In a new session, send a message the model answers by asking ASKED; the reply's element.

    Once answered, the model says ``after`` (``before`` is what it says before asking).
    """
    model.questions = ASKED
    model.before_tool_reply, model.after_tool_reply = before, after
    open_new_session(page, chat)
    return send(page, "Paint the button")


def test_a_question_is_answered_in_the_browser_and_the_turn_uses_it(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """The choices come on the stream as a card; the answer reaches the model; kept on reload."""
    polls = _polls(page)
    reply = _ask(page, chat, model, "Blue it is.", before="Let me ask. ")
    card = reply.locator(".prompt.question")
    expect(card.locator("legend")).to_have_text(
        "Colour: Which colour should the button be?", timeout=60_000
    )
    expect(card.locator("label.choice")).to_have_count(2)
    card.get_by_label("Blue").check()
    card.get_by_role("button", name="Answer").click()
    expect(card.locator(".answer")).to_have_text("Colour: Blue")
    expect(reply).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(reply.locator(".msg-body")).to_contain_text("Blue it is.")
    last = model.chat_requests[-1]
    assert last.has_tool_result
    assert "Blue" in json.dumps(last.messages[-1])
    page.reload()
    card = page.locator(".msg.assistant").last.locator(".prompt.question")
    expect(card.locator(".answer")).to_have_text("Colour: Blue", timeout=30_000)
    expect(card.get_by_role("button", name="Answer")).to_have_count(0)
    assert polls == []


def test_a_typed_answer_or_a_dismissal_from_the_browser(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """An answer of one's own reaches the model; a dismissed question is shown as such."""
    card = _ask(page, chat, model, "Understood.").locator(".prompt.question")
    card.get_by_label("Your own answer").fill("Sea green", timeout=60_000)
    card.get_by_role("button", name="Answer").click()
    expect(card.locator(".answer")).to_have_text("Colour: Sea green")
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", "completed", timeout=60_000
    )
    assert "Sea green" in json.dumps(model.chat_requests[-1].messages[-1])
    send(page, "Ask again")
    expect(page.locator(".msg.assistant")).to_have_count(2, timeout=30_000)
    second = page.locator(".msg.assistant").last.locator(".prompt.question")
    second.get_by_role("button", name="Dismiss").click(timeout=60_000)
    expect(second.locator(".answer")).to_have_text("Dismissed.")
    expect(page.locator(".msg.assistant").last).to_have_attribute(
        "data-status", re.compile("completed|failed"), timeout=60_000
    )


def test_a_question_waits_in_the_inbox_and_is_answered_there(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """The inbox lists the question with machine and worker; answering it there ends the turn."""
    reply = _ask(page, chat, model, "Red it is.")
    expect(reply.locator(".prompt.question")).to_be_visible(timeout=60_000)
    page.goto(f"{chat.server.url}/inbox")
    item = page.get_by_role("group", name="Question on laptop")
    expect(item).to_contain_text("Which colour should the button be?")
    expect(item).to_contain_text("app")
    expect(page.locator("#inbox-count")).to_have_text("1")
    item.get_by_label("Red").check()
    item.get_by_role("button", name="Answer").click()
    expect(item).to_be_hidden(timeout=30_000)
    expect(page.locator("#inbox-count")).to_have_text("0")
    page.go_back()
    reply = page.locator(".msg.assistant").last
    expect(reply).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(reply.locator(".prompt.question .answer")).to_have_text("Colour: Red")
    assert "Red" in json.dumps(model.chat_requests[-1].messages[-1])

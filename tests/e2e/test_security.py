"""What a browser must never do: run injected markup, or show and touch someone else's machine."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import (
    PASSWORD,
    Chat,
    Server,
    call_api,
    create_user,
    open_new_session,
    running,
    screenshots,
    sign_in,
)
from tests.integration.harness import create_user_and_machine

pytestmark = pytest.mark.slow

MACHINE_NAME = """<img src=x onerror="window.xss='machine';alert('machine')">"""
MESSAGE = """<script>window.xss='user';alert('user')</script> <img src=x onerror="alert('u')">"""
REPLY = """<script>window.xss='reply';alert('reply')</script>

<img src=x onerror="window.xss='img';alert('img')">

**bold** [link](javascript:alert('link')) <a href="javascript:alert(1)">a</a>"""
XSS_FLAG = "window.xss"


def test_markup_in_a_machine_name_and_in_messages_renders_as_text(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """<script> and onerror= in a machine name, a message and a reply show as text, inert."""
    dialogs: list[str] = []

    def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)

    page.goto(chat.server.url)
    page.get_by_role("button", name="Add machine").click()
    page.get_by_role("dialog").get_by_label("Name").fill(MACHINE_NAME)
    page.get_by_role("dialog").get_by_role("button", name="Add machine").click()
    page.get_by_role("dialog").get_by_role("button", name="Done").click()
    card = page.locator("li.machine", has_text="onerror")
    expect(card.get_by_role("heading")).to_have_text(MACHINE_NAME)
    page.reload()  # the first paint comes from JSON embedded in the page
    expect(card.get_by_role("heading")).to_have_text(MACHINE_NAME)
    card.get_by_role("link", name="Workers").click()
    expect(page.locator("#machine-name")).to_have_text(MACHINE_NAME)
    expect(page).to_have_title(f"{MACHINE_NAME} · OpenCode Orchestrator")

    model.reply = REPLY
    open_new_session(page, chat)
    expect(page.get_by_label("Machine")).to_contain_text(MACHINE_NAME)
    box = page.get_by_label("Message", exact=True)
    box.fill(MESSAGE)
    box.press("Enter")
    expect(page.locator(".msg.user .msg-body")).to_have_text(MESSAGE)
    reply = page.locator(".msg.assistant").last
    expect(reply.locator(".md strong")).to_have_text("bold", timeout=30_000)
    expect(reply.locator(".md")).to_contain_text("<script>window.xss='reply'")
    expect(reply.locator(".md")).to_contain_text("""<img src=x onerror="window.xss='img'""")
    messages = page.locator("#messages")
    expect(messages.locator("script, img, iframe, [onerror]")).to_have_count(0)
    expect(messages.locator("a[href^='javascript']")).to_have_count(0)
    screenshots(page, "chat-xss")

    page.wait_for_timeout(300)  # a broken image's onerror would have fired by now
    assert dialogs == []
    assert page.evaluate(f"typeof {XSS_FLAG}") == "undefined"


def test_another_user_can_neither_see_nor_touch_a_machine(
    browser: Browser, page: Page, tmp_path: Path
) -> None:
    """bob gets 404 for alice's machine and worker, in the UI and from the API."""
    with running(Server(tmp_path / "data")) as server:
        machine_id = create_user_and_machine(server.data_dir).split(":")[0]
        create_user(server.data_dir, "bob")
        sign_in(page, server.url, "alice")
        status, created = call_api(
            page, "POST", f"/api/machines/{machine_id}/workers", {"directory": ""}
        )
        assert status == 201, created
        worker_id = created["worker"]["worker_id"]

        bob_context = browser.new_context()
        bob = bob_context.new_page()
        try:
            sign_in(bob, server.url, "bob")
            expect(bob.get_by_role("heading", name="Create your first machine")).to_be_visible()
            expect(bob.get_by_text("laptop")).to_have_count(0)

            shown = bob.goto(f"{server.url}/machines/{machine_id}")
            assert shown is not None
            assert shown.status == 404
            expect(bob.get_by_text("Something is not right")).to_be_visible()
            expect(bob.get_by_text("laptop")).to_have_count(0)

            bob.goto(f"{server.url}/chat?machine={machine_id}&worker={worker_id}")
            expect(bob.get_by_text("There is no such machine or worker here.")).to_be_visible()
            expect(bob.get_by_label("Machine")).not_to_contain_text("laptop")

            for method, path, body in [
                ("GET", f"/api/machines/{machine_id}", None),
                ("DELETE", f"/api/machines/{machine_id}", None),
                ("GET", f"/api/machines/{machine_id}/workers", None),
                ("POST", f"/api/machines/{machine_id}/workers", {"directory": "x"}),
                ("POST", f"/api/machines/{machine_id}/worker-tokens", None),
                ("GET", f"/api/events?machine_id={machine_id}", None),
                ("POST", f"/api/workers/{worker_id}/approve", None),
                ("DELETE", f"/api/workers/{worker_id}", None),
                ("GET", f"/api/workers/{worker_id}/sessions", None),
                ("POST", f"/api/workers/{worker_id}/sessions", {"model": "fake/fake-model"}),
            ]:
                status, answer = call_api(bob, method, path, body)
                assert status == 404, (method, path, status, answer)
        finally:
            bob_context.close()

        # alice's machine and worker are untouched, and she can still remove the worker.
        page.reload()
        expect(page.locator("li.machine", has_text="laptop")).to_contain_text("1 ready")
        page.goto(f"{server.url}/machines/{machine_id}")
        row = page.locator("li.worker")
        expect(row).to_contain_text("(root folder)")
        row.get_by_role("button", name="Remove").click()
        page.get_by_role("dialog").get_by_role("button", name="Remove worker").click()
        expect(page.get_by_role("heading", name="No workers yet")).to_be_visible()


def test_every_page_passes_the_content_security_policy(
    page: Page, browser: Browser, tmp_path: Path
) -> None:
    """Setup, sign-in, machines, a machine, chat, jobs and an error page load with no violation.

    The ``page`` fixture fails the test on any violation Chromium reports; a
    second browser shows the policy is in force: an injected inline script never runs.
    """
    with running(Server(tmp_path / "data")) as server:
        page.goto(server.setup_link())
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
        page.get_by_label("Password again").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        page.wait_for_url(f"{server.url}/")
        status, created = call_api(page, "POST", "/api/machines", {"name": "laptop"})
        assert status == 201
        machine_id = created["machine"]["machine_id"]
        for path in ("/", f"/machines/{machine_id}", "/chat", "/jobs", "/no-such-page"):
            page.goto(server.url + path)
            page.wait_for_load_state("networkidle")
        expect(page.locator("body")).to_contain_text("Not Found")
        page.goto(server.url + "/")
        page.get_by_role("button", name="Sign out", exact=True).click()
        expect(page.get_by_role("button", name="Sign in")).to_be_visible()

        context = browser.new_context()
        try:
            other = context.new_page()
            refused: list[str] = []
            other.on("console", lambda message: refused.append(message.text))
            other.goto(server.url + "/login")
            other.evaluate(INJECT_INLINE_SCRIPT)
            other.wait_for_timeout(200)
            assert other.evaluate("typeof window.inlineRan") == "undefined"
            assert any("Content Security Policy" in text for text in refused)
        finally:
            context.close()


INJECT_INLINE_SCRIPT = """() => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineRan = true';
    document.body.append(script);
}"""


def test_sign_out_everywhere_signs_out_the_other_browser(
    page: Page, browser: Browser, tmp_path: Path
) -> None:
    """Clicking "Sign out everywhere" in one browser sends the other to the sign-in page."""
    data_dir = tmp_path / "data"
    with running(Server(data_dir)) as server:
        create_user(data_dir, "alice")
        sign_in(page, server.url, "alice")
        context = browser.new_context()
        try:
            laptop = context.new_page()
            sign_in(laptop, server.url, "alice")
            page.get_by_role("button", name="Sign out everywhere").click()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            laptop.reload()
            expect(laptop.get_by_role("button", name="Sign in")).to_be_visible()
            assert call_api(laptop, "GET", "/api/machines")[0] == 401
        finally:
            context.close()

"""The inbox in a real browser: two machines each wait for a permission; answer one in place;
the reply that finishes is listed until marked seen."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer, opencode_environment
from tests.e2e.harness import Chat, Output, call_api, run_cli, wait_for_online_worker
from tests.integration.harness import cli_env, start_worker

pytestmark = [pytest.mark.slow]


def _ask(page: Page, worker_id: str, model: str, text: str) -> str:
    status, started = call_api(page, "POST", f"/api/workers/{worker_id}/sessions", {"model": model})
    assert status == 201, started
    session_id = str(started["session"]["chat_session_id"])
    status, sent = call_api(page, "POST", f"/api/sessions/{session_id}/messages", {"content": text})
    assert status == 201, sent
    return session_id


def _reply_of(page: Page, session_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, found = call_api(page, "GET", f"/api/sessions/{session_id}/messages")
        replies = [m for m in found["messages"] if m["role"] == "assistant"]
        if replies and replies[-1]["status"] not in ("pending", "streaming"):
            return dict(replies[-1])
        time.sleep(0.2)
    raise AssertionError(f"the reply of {session_id} did not finish")


def test_the_inbox_shows_every_machines_requests_and_answers_in_place(
    page: Page, chat: Chat, model: FakeModelServer, tmp_path: Path
) -> None:
    """Both waiting requests are listed with their machine; allowing one finishes that turn,
    whose reply is then listed as finished until marked seen."""
    data_dir = chat.server.data_dir
    made = run_cli(["machine", "create", "desktop", "--user", "alice"], data_dir)
    match = re.search(r"^\s*(mch_\S+:sec_\S+)\s*$", made, re.MULTILINE)
    assert match, made
    token = match.group(1)
    root, home = tmp_path / "desktop-projects", tmp_path / "desktop-home"
    (root / "api").mkdir(parents=True)
    home.mkdir()
    env = opencode_environment(
        tmp_path / "opencode-desktop", model.base_url, base_env=cli_env(data_dir)
    )
    desktop = Output(start_worker(chat.server.url, token, root, env, home))
    try:
        desktop.wait_for(r"Machine .* is online")
        desktop_worker, desktop_model = wait_for_online_worker(page, token.split(":")[0], "api")
        model.reply, model.bash_command, model.after_tool_reply = "Done.", "echo hi", "It ran."

        laptop_session = _ask(page, chat.worker_id, chat.model, "Run the tests")
        desktop_session = _ask(page, desktop_worker, desktop_model, "Build it")

        page.goto(f"{chat.server.url}/inbox")
        laptop = page.get_by_role("group", name="bash on laptop")
        desktop_item = page.get_by_role("group", name="bash on desktop")
        expect(laptop).to_be_visible(timeout=60_000)
        expect(desktop_item).to_be_visible(timeout=60_000)
        expect(laptop).to_contain_text("echo hi")
        expect(laptop).to_contain_text("app")
        expect(desktop_item).to_contain_text("api")
        expect(page.locator("#inbox-count")).to_have_text("2")

        laptop.get_by_role("button", name="Allow once").click()
        expect(laptop).to_be_hidden()
        expect(page.locator("#inbox-count")).to_have_text("1")
        finished = _reply_of(page, laptop_session)
        assert (finished["status"], finished["content"]) == ("completed", "It ran.")
        expect(desktop_item).to_be_visible()
        _, waiting = call_api(page, "GET", "/api/inbox")
        assert [i["session_id"] for i in waiting["items"]] == [desktop_session]

        # The finished reply is listed apart from what waits (the badge still counts 1);
        # "Mark all seen" clears that list.
        finished_list = page.locator("#inbox-finished-list")
        link = finished_list.locator(f'a[href*="{laptop_session}"]')
        expect(link).to_contain_text("Finished in", timeout=30_000)
        expect(finished_list).to_contain_text("It ran.")
        expect(page.locator("#inbox-count")).to_have_text("1")
        page.get_by_role("button", name="Mark all seen").click()
        expect(finished_list).to_contain_text("No replies finished since you last looked.")
        expect(link).to_be_hidden()
        _, seen = call_api(page, "GET", "/api/inbox")
        assert (seen["finished"], len(seen["items"])) == ([], 1)

        # The badge is on every page.
        page.goto(f"{chat.server.url}/jobs")
        expect(page.locator("#inbox-count")).to_have_text("1")
    finally:
        desktop.stop()


def test_the_header_badge_is_live_without_asking_for_the_inbox(
    page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """On another page the badge counts a request that starts waiting and clears when it is
    answered, from its light stream: the page never fetches /api/inbox."""
    fetched: list[str] = []
    page.on(
        "request",
        lambda request: fetched.append(request.url) if "/api/inbox" in request.url else None,
    )
    page.goto(f"{chat.server.url}/jobs")
    badge = page.locator("#inbox-count")
    expect(badge).to_be_hidden()
    model.reply, model.bash_command, model.after_tool_reply = "Done.", "echo hi", "It ran."
    session_id = _ask(page, chat.worker_id, chat.model, "Run the tests")
    expect(badge).to_have_text("1", timeout=60_000)
    _, waiting = call_api(page, "GET", "/api/inbox")
    (item,) = waiting["items"]
    status, _ = call_api(
        page, "POST", f"/api/permissions/{item['permission_id']}/answer", {"answer": "once"}
    )
    assert status == 200
    expect(badge).to_be_hidden()
    assert _reply_of(page, session_id)["status"] == "completed"
    # call_api goes through the browser context, not the page: the page's own requests
    # to the inbox are the count stream only (a polling badge would GET /api/inbox).
    assert fetched
    assert {url.removeprefix(chat.server.url) for url in fetched} == {"/api/inbox/stream?count=1"}

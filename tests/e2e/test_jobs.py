"""The jobs page in a real browser: create (bad cron first), run now, pause, delete.

Against the real server, a real ``orchestrator worker start`` and real opencode on the fake model.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, screenshots

pytestmark = pytest.mark.slow

REPLY = "Nightly review: all tests pass."


def test_a_job_is_created_run_now_paused_and_deleted(
    chat: Chat, page: Page, model: FakeModelServer
) -> None:
    model.reply = REPLY
    job_reads: list[str] = []  # the page reads jobs when its event stream says so, not on a timer
    page.on(
        "request",
        lambda request: job_reads.append(request.url) if "/api/jobs" in request.url else None,
    )
    page.goto(f"{chat.server.url}/chat")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", name="No scheduled jobs yet")).to_be_visible()
    expect(page.get_by_role("link", name="Jobs")).to_have_attribute("aria-current", "page")
    screenshots(page, "jobs-empty")

    # The dialog: the only machine and worker are picked, the time zone is the browser's.
    page.get_by_role("button", name="Create a job").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    expect(dialog.get_by_label("Worker")).to_have_value(chat.worker_id)
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    expect(dialog.get_by_label("Time zone")).to_have_value(zone)
    dialog.get_by_label("Name", exact=True).fill("Nightly review")
    dialog.get_by_label("Model").select_option(chat.model)
    dialog.get_by_label("Prompt").fill("Review the code and report.")
    cron = dialog.get_by_label("Schedule (cron)")

    # An invalid schedule: the server's sentence, inline, and the field to fix.
    cron.fill("61 9 * * *")
    dialog.get_by_role("button", name="Create job").click()
    expect(dialog.get_by_role("alert")).to_contain_text("The minute field '61'")
    expect(cron).to_be_focused()
    expect(cron).to_have_attribute("aria-invalid", "true")
    screenshots(page, "job-dialog-error")

    # An example fills the field; its words show under it.
    dialog.get_by_role("button", name="0 9 * * 1-5").click()
    expect(cron).to_have_value("0 9 * * 1-5")
    expect(dialog.locator("#cron-words")).to_contain_text("On weekdays, at 09:00")
    dialog.get_by_role("button", name="Create job").click()
    expect(dialog).to_be_hidden()

    card = page.locator("li.job", has_text="Nightly review")
    expect(card.locator(".card-head .badge")).to_have_text("scheduled")
    expect(card).to_contain_text("On weekdays, at 09:00")
    expect(card.locator(".next-run time")).to_have_attribute("datetime", re.compile(r".+"))
    expect(card.locator(".next-run")).to_contain_text("in ")
    expect(card).to_contain_text("No runs yet.")

    # Run now: the run appears, reaches done, and links to the session with the reply.
    card.get_by_role("button", name="Run now").click()
    run = card.locator("li.run").first
    expect(run).to_be_visible()
    expect(run).to_have_attribute("data-status", "done", timeout=30_000)
    expect(run.locator(".badge")).to_have_text("done")
    settled = len(job_reads)
    page.wait_for_timeout(4_000)  # longer than the 3 s the page used to poll at
    assert len(job_reads) == settled, job_reads[settled:]
    screenshots(page, "jobs")
    run.get_by_role("link", name="Open session").click()
    page.wait_for_url("**/chat?*session=*")
    expect(page.locator(".msg.user").first).to_contain_text("Review the code and report.")
    expect(page.locator(".msg.assistant .md").first).to_have_text(REPLY, timeout=30_000)

    # Pause (the next run goes), resume, pause again; then delete after confirming.
    page.go_back()
    card.get_by_role("button", name="Pause").click()
    expect(card.locator(".card-head .badge")).to_have_text("paused")
    expect(card.locator(".next-run")).to_have_text("none while paused")
    card.get_by_role("button", name="Resume").click()
    expect(card.locator(".card-head .badge")).to_have_text("scheduled")
    card.get_by_role("button", name="Pause").click()
    expect(card.locator(".card-head .badge")).to_have_text("paused")
    screenshots(page, "jobs-paused", viewports=("phone",))

    card.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete job").click()
    expect(page.get_by_role("heading", name="No scheduled jobs yet")).to_be_visible()

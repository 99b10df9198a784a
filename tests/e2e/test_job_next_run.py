"""A new job's next run, in a real browser: ahead of now at once, never "… ago" once it comes."""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import Chat, call_api

pytestmark = pytest.mark.slow


def test_a_new_job_shows_its_real_next_run_then_due_now(chat: Chat, page: Page) -> None:
    """Created: "(in … )" at once; when the browser's time passes it: "(due now)", not "ago"."""
    page.clock.install()
    page.goto(f"{chat.server.url}/jobs")
    status, created = call_api(
        page,
        "POST",
        "/api/jobs",
        {
            "worker_id": chat.worker_id,
            "name": "Half-hourly",
            "model": chat.model,
            "prompt": "Check.",
            "cron": "*/30 * * * *",
        },
    )
    assert status == 201, created
    next_run = datetime.fromisoformat(created["job"]["next_run_at"])
    card = page.locator("li.job", has_text="Half-hourly")
    expect(card.locator(".next-run time")).to_have_attribute(
        "datetime", created["job"]["next_run_at"]
    )
    expect(card.locator(".next-run")).to_contain_text(" (in ")
    now = datetime.fromisoformat(page.evaluate("new Date().toISOString()").replace("Z", "+00:00"))
    page.clock.fast_forward(int((next_run - now).total_seconds() * 1000) + 60_000)
    expect(card.locator(".next-run")).to_contain_text(" (due now)")
    expect(card.locator(".next-run")).not_to_contain_text("ago")

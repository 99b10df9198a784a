"""Settings → API tokens in Debian's chromium: create (shown once, copied), use, revoke."""

from __future__ import annotations

from pathlib import Path
from urllib.request import Request, urlopen

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import Server, create_user, running, sign_in

pytestmark = [pytest.mark.slow]


def _status_with(url: str, token: str) -> int:
    request = Request(url + "/api/machines", headers={"Authorization": f"Bearer {token}"})
    try:
        with urlopen(request, timeout=10) as response:
            return int(response.status)
    except OSError as exc:
        return int(getattr(exc, "code", 0))


def test_a_token_is_created_copied_used_and_revoked(page: Page, tmp_path: Path) -> None:
    """The secret appears once with a copy button, works as a bearer token, and stops on revoke."""
    with running(Server(tmp_path / "data")) as server:
        create_user(server.data_dir, "alice")
        sign_in(page, server.url, "alice")
        page.goto(server.url + "/settings")
        section = page.get_by_role("region", name="API tokens")
        expect(section.get_by_text("No API tokens yet.")).to_be_visible()
        section.get_by_label("Name").fill("   ")
        section.get_by_role("button", name="Create token").click()
        expect(section.get_by_role("alert")).to_have_text("Token name must not be empty.")
        section.get_by_label("Name").fill("nightly report")
        section.get_by_role("button", name="Create token").click()
        secret = section.locator("#api-token-value")
        expect(section.get_by_role("button", name="Copy token")).to_be_visible()
        expect(secret).to_contain_text("oat_")
        token = secret.text_content() or ""
        assert token.startswith("oat_")
        items = section.get_by_role("list", name="API tokens").get_by_role("listitem")
        expect(items).to_have_count(1)
        expect(items.first).to_contain_text("nightly report")
        assert _status_with(server.url, token) == 200

        page.reload()  # shown once: gone after a reload, the name stays listed
        expect(section.locator("#api-token-new")).to_be_hidden()
        expect(items.first).to_contain_text("nightly report")
        items.first.get_by_role("button", name="Revoke").click()
        page.get_by_role("dialog").get_by_role("button", name="Revoke token").click()
        expect(section.get_by_text("No API tokens yet.")).to_be_visible()
        assert _status_with(server.url, token) == 401

"""The installable app in Debian's chromium: manifest, service worker, shell cache, settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.harness import Server, call_api, create_user, running, sign_in

pytestmark = [pytest.mark.slow]


def _shell(static: Path) -> list[str]:
    source = (static / "sw.js").read_text()
    start = source.index("const SHELL = [")
    listing = source[start + len("const SHELL = ") : source.index("];", start) + 1]
    return list(json.loads(listing.replace(",\n]", "\n]")))


@pytest.fixture
def profile_page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    """A page in a real (not incognito) profile: Chromium refuses to install from incognito."""
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile",
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800},
    )
    context.set_default_timeout(20_000)
    try:
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        context.close()


def test_the_app_installs_caches_its_shell_and_offers_notifications(
    profile_page: Page, tmp_path: Path
) -> None:
    """The worker registers, the manifest passes Chromium's checks, Settings turns push on."""
    page = profile_page
    static = Path(__file__).resolve().parents[2] / "webui" / "static"
    with running(Server(tmp_path / "data")) as server:
        create_user(server.data_dir, "alice")
        sign_in(page, server.url, "alice")

        # The service worker controls the whole app and has cached the shell.
        script = page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")
        assert script == f"{server.url}/sw.js"
        cached = page.evaluate(
            "caches.open('orchestrator-shell-v1').then((c) => c.keys())"
            ".then((keys) => keys.map((k) => new URL(k.url).pathname).sort())"
        )
        assert set(_shell(static)) <= set(cached), "the app shell is cached at install"
        page.reload()
        assert page.evaluate("navigator.serviceWorker.controller !== null")

        # Chromium's own manifest parser and installability check find nothing wrong.
        cdp = page.context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"] == f"{server.url}/manifest.webmanifest"
        assert manifest["errors"] == []
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []

        # Settings → Notifications: choose events and quiet hours; they are saved.
        page.get_by_role("link", name="Settings").click()
        section = page.get_by_role("region", name="Notifications")
        expect(section.get_by_role("heading", name="Notifications")).to_be_visible()
        section.get_by_label("a job run fails").uncheck()
        section.get_by_label("From").fill("22:00")
        section.get_by_label("Until").fill("07:00")
        section.get_by_label("Time zone").select_option("Europe/Berlin")
        section.get_by_role("button", name="Save notification settings").click()
        expect(section.get_by_text("Saved.")).to_be_visible()
        status, found = call_api(page, "GET", "/api/push")
        assert status == 200
        assert found["settings"] == {
            "events": ["long_reply", "machine_offline", "permission"],
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "time_zone": "Europe/Berlin",
        }

        # Enabling asks the browser's push service for a subscription. None can be
        # reached from here, so the page says so in one sentence and stores nothing.
        page.context.grant_permissions(["notifications"], origin=server.url)
        expect(section.get_by_text("Notifications are off for this device.")).to_be_visible()
        section.get_by_role("button", name="Enable notifications on this device").click()
        expect(section.get_by_role("alert")).to_contain_text(
            "This browser could not reach its push service", timeout=30_000
        )
        assert call_api(page, "GET", "/api/push")[1]["subscriptions"] == []

"""Clone in the folder picker, in a real browser: real machine process, git daemon, opencode."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Machine
from tests.e2e.harness import call_api, screenshots
from tests.integration.git_server import served_repository, silent_server

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("opencode")]

# Records every value and line the clone's progress showed, from the page's own DOM.
WATCH_PROGRESS = """() => {
  window.seenProgress = [];
  const clone = document.querySelector(".clone");
  new MutationObserver(() => {
    const bar = clone.querySelector("progress");
    const line = clone.querySelector(".clone-line").textContent;
    if (!bar.hidden) window.seenProgress.push([bar.value, line]);
  }).observe(clone, { subtree: true, attributes: true, childList: true, characterData: true });
}"""


def open_clone_form(page: Page) -> Locator:
    page.get_by_role("button", name="Add worker").first.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".picker")).to_be_visible()
    dialog.get_by_role("button", name="Clone repository").click()
    return dialog


def test_a_repository_is_cloned_from_the_picker_and_gets_a_worker(
    machine: Machine, page: Page, tmp_path: Path
) -> None:
    """Clone from git daemon: the name comes from the URL, progress shows, then Add worker here."""
    with served_repository(tmp_path / "served", files=400) as daemon:
        dialog = open_clone_form(page)
        dialog.get_by_label("Repository URL").fill(f"{daemon}/app.git")
        expect(dialog.get_by_label("Clone into folder")).to_have_value("app")
        screenshots(page, "clone-dialog")
        page.evaluate(WATCH_PROGRESS)
        dialog.get_by_role("button", name="Clone", exact=True).click()
        expect(dialog.locator(".clone-line")).to_have_text("Cloned into app.", timeout=60_000)
        seen = page.evaluate("window.seenProgress")
        assert any(0 < value < 100 for value, _ in seen), seen
        assert any(line.startswith(("Receiving", "Resolving")) for _, line in seen), seen
        assert (machine.root / "app" / "README.md").read_text() == "# app\n"
        # The picker lists the new folder (a git repository); the field names it.
        new = dialog.locator(".folder", has_text="app")
        expect(new).to_contain_text("git")
        expect(dialog.get_by_label("Folder", exact=True)).to_have_value("app")
        screenshots(page, "clone-done")

        dialog.get_by_role("button", name="Add worker here").click()
        expect(dialog).to_be_hidden()
        online = page.locator("[data-group=online] li", has_text="app")
        expect(online).to_be_visible(timeout=30_000)


def test_a_refused_url_shows_its_sentence_and_changes_nothing(machine: Machine, page: Page) -> None:
    """ext:: and file:// URLs get the validator's sentence; no folder and no command appear."""
    dialog = open_clone_form(page)
    alert = dialog.locator(".clone [role=alert]")
    attempts = {
        "ext::sh": "The ext:: transport is not allowed;",
        "file:///etc": "Cloning from local files (file://) is not allowed;",
    }
    for url, sentence in attempts.items():
        dialog.get_by_label("Repository URL").fill(url)
        dialog.get_by_label("Clone into folder").fill("evil")
        dialog.get_by_role("button", name="Clone", exact=True).click()
        expect(alert).to_contain_text(sentence)
        expect(alert).to_contain_text("use an https://, http://, ssh://, git:// or user@host:path")
    screenshots(page, "clone-refused")
    assert list(machine.root.iterdir()) == []
    _, listed = call_api(page, "GET", f"/api/machines/{machine.machine_id}/commands")
    assert [c["kind"] for c in listed["commands"]] == ["list_dir"]


def test_a_hanging_clone_is_cancelled_and_leaves_nothing(machine: Machine, page: Page) -> None:
    """Enter starts a clone (no worker is added); one that hangs runs until Cancel clone."""
    with silent_server() as url:
        dialog = open_clone_form(page)
        dialog.get_by_label("Repository URL").fill(f"{url}/slow.git")
        dialog.get_by_label("Repository URL").press("Enter")  # clones; does not add a worker
        expect(dialog.locator(".clone-line")).to_have_text("Cloning…")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label("Repository URL")).to_be_disabled()
        dialog.get_by_role("button", name="Cancel clone").click()
        expect(dialog.locator(".clone [role=alert]")).to_have_text("The command was cancelled.")
        expect(dialog.get_by_role("button", name="Cancel clone")).to_be_hidden()
        expect(dialog.get_by_label("Repository URL")).to_be_enabled()
    assert list(machine.root.iterdir()) == []
    _, listed = call_api(page, "GET", f"/api/machines/{machine.machine_id}/workers")
    assert listed["workers"] == []


def test_the_picker_lists_dot_folders_last_with_a_drawn_folder_icon(
    machine: Machine, page: Page
) -> None:
    """Home-like roots: app, zeta before .cache, .npm; the icon is CSS, not an emoji glyph."""
    for name in (".cache", "app", ".npm", "zeta"):
        (machine.root / name).mkdir()
    (machine.root / "notes.txt").write_text("not a folder")
    page.get_by_role("button", name="Add worker").first.click()
    folders = page.get_by_role("dialog").locator(".folder-list .folder")
    expect(folders).to_have_text(["app", "zeta", ".cache", ".npm"])
    icon = folders.first.locator(".folder-icon")
    expect(icon).to_have_text("")
    box = icon.bounding_box()
    assert box is not None
    assert box["width"] > 0
    assert box["height"] > 0
    color = icon.evaluate("el => getComputedStyle(el).backgroundColor")
    assert color not in ("rgba(0, 0, 0, 0)", "transparent"), color

"""A worker's permission policy in a real browser, with the real machine process and opencode."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.conftest import Machine
from tests.e2e.harness import ask_to_run, call_api, screenshots

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("opencode")]


def test_a_worker_added_with_the_default_policy_asks_before_bash_runs(
    machine: Machine, page: Page, model: FakeModelServer
) -> None:
    """Default policy shown when adding; bash asks though opencode's config allows; status words."""
    (machine.root / "app").mkdir()
    page.get_by_role("button", name="Add worker").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator(".picker").get_by_role("button", name="app", exact=True).click()
    expect(dialog.get_by_label("Folder", exact=True)).to_have_value("app")
    for label, value in [
        ("Run commands", "ask"),
        ("Edit files", "ask"),
        ("Fetch web pages", "ask"),
        ("Outside the folder", "deny"),
    ]:
        expect(dialog.get_by_label(label)).to_have_value(value)
    screenshots(page, "add-worker-policy")
    dialog.get_by_role("button", name="Add worker").click()
    row = page.locator("[data-group=online] li", has_text="app")
    expect(row).to_be_visible(timeout=30_000)
    expect(row).to_contain_text("commands: asks · edits: asks · web: asks · outside: denied")

    row.get_by_role("link", name="Chat").click()
    page.get_by_role("button", name="New session").click()
    prompt = ask_to_run(page, model, "echo hi > proof.txt", "It printed hi.")
    expect(prompt).to_contain_text("echo hi > proof.txt")
    assert not (machine.root / "app" / "proof.txt").exists()
    prompt.get_by_role("button", name="Deny").click()
    expect(prompt).to_contain_text("Denied")
    assert not (machine.root / "app" / "proof.txt").exists()

    # Status words as the UI says them elsewhere: an open session, then an ended one.
    expect(page.locator("#session-meta .badge")).to_have_text("open")
    expect(page.locator(".session .hint").first).to_contain_text("· open ·")
    page.get_by_role("button", name="End session").click()
    page.get_by_role("dialog").get_by_role("button", name="End session").click()
    expect(page.locator("#session-meta .badge")).to_have_text("ended")
    expect(page.locator("[data-group=ended] .session .hint")).to_contain_text("· ended ·")


def test_the_policy_is_changed_on_the_workers_page(machine: Machine, page: Page) -> None:
    """Permissions opens the worker's policy; saving shows it on the row and in the API."""
    (machine.root / "app").mkdir()
    status, _ = call_api(
        page, "POST", f"/api/machines/{machine.machine_id}/workers", {"directory": "app"}
    )
    assert status == 201
    row = page.locator("li.worker", has_text="app")
    row.get_by_role("button", name="Permissions").click()
    dialog = page.get_by_role("dialog", name="Permissions")
    expect(dialog.get_by_label("Run commands")).to_have_value("ask")
    expect(dialog.get_by_label("Run commands")).to_be_focused()
    dialog.get_by_label("Run commands").select_option("allow")
    dialog.get_by_label("Outside the folder").select_option("ask")
    screenshots(page, "worker-policy")
    dialog.get_by_role("button", name="Save permissions").click()
    expect(dialog).to_be_hidden()
    expect(row).to_contain_text("commands: allowed · edits: asks · web: asks · outside: asks")
    _, listed = call_api(page, "GET", f"/api/machines/{machine.machine_id}/workers")
    assert listed["workers"][0]["permission_policy"] == {
        "bash": "allow",
        "edit": "ask",
        "webfetch": "ask",
        "external_directory": "ask",
    }


def test_a_worker_whose_folder_leads_out_of_the_root_shows_why_on_its_page(
    machine: Machine, page: Page
) -> None:
    """A worker on a symlink out of the root: its row and the chat say the machine's sentence."""
    outside = machine.root.parent / "outside"
    outside.mkdir()
    (machine.root / "escape").symlink_to(outside)
    body = {"directory": "escape"}
    status, _ = call_api(page, "POST", f"/api/machines/{machine.machine_id}/workers", body)
    assert status == 201
    row = page.locator("[data-group=offline] li", has_text="escape")
    problem = row.locator(".worker-problem")
    expect(problem).to_contain_text("leads outside the machine's root", timeout=30_000)
    screenshots(page, "worker-problem")
    row.get_by_role("link", name="Chat").click()
    expect(page.locator("main")).to_contain_text("leads outside the machine's root")

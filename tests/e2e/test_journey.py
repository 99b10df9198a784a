"""A new user's whole journey in a real browser, against the real server, CLI and opencode."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import opencode_environment
from tests.e2e.harness import (
    PASSWORD,
    Output,
    Server,
    ask_to_run,
    running,
    screenshots,
    spawn,
    start_machine,
)
from tests.integration.harness import cli_env, fake_model_thread

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("opencode")]

REPLY = """Here is the plan:

1. Read the **code**.
2. Change it.

```python
def greet(name):
    return f"Hello, {name}!"
```
"""
LONG_REPLY = "slowly " * 300


def test_a_new_user_goes_from_setup_link_to_chat_and_back(page: Page, tmp_path: Path) -> None:
    """Setup link → account → machine → worker → chat, stop, permission, end → delete."""
    root = tmp_path / "projects"
    (root / "app").mkdir(parents=True)
    (root / "lib").mkdir()
    machine_dir = tmp_path / "machine"
    machine_dir.mkdir()
    machine: Output | None = None
    with (
        fake_model_thread(reply=REPLY, delta_delay=0.02) as model,
        running(Server(tmp_path / "data")) as server,
    ):
        try:
            # First run: the setup link printed by `orchestrator serve` creates the account.
            page.goto(server.setup_link())
            expect(page.get_by_role("heading", name="Create the first account")).to_be_visible()
            screenshots(page, "setup")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password (at least 8 characters)").fill(PASSWORD)
            page.get_by_label("Password again").fill(PASSWORD)
            page.get_by_role("button", name="Create account").click()

            # No machines yet: the empty state offers to add one.
            expect(page.get_by_role("heading", name="Create your first machine")).to_be_visible()
            screenshots(page, "machines-empty")
            page.get_by_role("button", name="Add machine").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Name").fill("laptop")
            dialog.get_by_role("button", name="Add machine").click()
            expect(dialog.locator("#machine-command")).to_contain_text("worker start")
            command = dialog.locator("#machine-command").inner_text()
            token = dialog.locator("#machine-token-value").inner_text()
            assert command == f"orchestrator worker start --server {server.url}"  # no secret
            expect(dialog.get_by_text("shown only this once")).to_be_visible()
            screenshots(page, "add-machine")
            dialog.get_by_role("button", name="Done").click()
            expect(page.locator("#machine-token-value")).to_be_empty()
            assert token not in page.content(), "the token is shown once only"

            # The machine goes online once `orchestrator worker start` runs with the token.
            env = opencode_environment(
                tmp_path / "opencode", model.base_url, base_env=cli_env(tmp_path / "data")
            )
            machine = start_machine(command, token, root, env, machine_dir, server.url)
            card = page.locator("li.machine", has_text="laptop")
            expect(card.locator(".badge")).to_have_text("online", timeout=30_000)
            expect(card).to_contain_text("last seen just now")
            expect(card).to_contain_text("0 online · 0 offline · 0 pending")
            screenshots(page, "machines")

            # Workers: add one on a folder; register another from the machine and approve it.
            card.get_by_role("link", name="Workers").click()
            expect(page.get_by_role("heading", name="No workers yet")).to_be_visible()
            # Two workers register from the machine with worker tokens: approve one, reject one.
            for folder in ("lib", "docs"):
                page.get_by_role("button", name="Create worker token").click()
                shown = page.locator("#worker-command")
                expect(shown).to_contain_text("orchestrator worker register")
                words = shlex.split(shown.inner_text())
                page.get_by_role("dialog").get_by_role("button", name="Done").click()
                (root / folder).mkdir(exist_ok=True)
                # Exactly as shown, in the worker's folder: it finds the machine's .env itself.
                registered = spawn(words[1:], env, root / folder)
                assert registered.process.wait(timeout=60) == 0, "".join(registered.lines)
            pending = page.locator("[data-group=pending_authorization] li")
            expect(pending).to_have_count(2)
            screenshots(page, "workers-pending")
            pending.filter(has_text="docs").get_by_role("button", name="Reject").click()
            pending.filter(has_text="lib").get_by_role("button", name="Approve").click()
            expect(pending).to_have_count(0)
            expect(page.locator("li.worker", has_text="docs")).to_have_count(0)
            expect(page.locator("li.worker", has_text="lib").locator(".badge")).to_have_text(
                "online", timeout=30_000
            )

            page.get_by_role("button", name="Add worker").first.click()
            dialog = page.get_by_role("dialog")
            picker = dialog.locator(".picker")
            picker.get_by_label("New folder name").fill("scratch")
            picker.get_by_role("button", name="Create folder").click()
            expect(dialog.get_by_label("Folder", exact=True)).to_have_value("scratch")
            assert (root / "scratch").is_dir()
            picker.get_by_role("button", name="root").click()
            picker.get_by_role("button", name="app", exact=True).click()
            expect(dialog.get_by_label("Folder", exact=True)).to_have_value("app")
            expect(picker.get_by_text("No folders here.")).to_be_visible()
            screenshots(page, "add-worker")
            dialog.get_by_role("button", name="Add worker").click()
            online = page.locator("[data-group=online] li", has_text="app")
            expect(online).to_be_visible(timeout=30_000)
            # The models come from opencode once it has started: slower on a loaded machine.
            expect(online).to_contain_text("2 models", timeout=30_000)
            screenshots(page, "workers")

            # Chat: the worker is picked, a new session starts with one of its models.
            online.get_by_role("link", name="Chat").click()
            expect(page.locator("#worker-status")).to_have_text("online")
            expect(page.get_by_text("No sessions yet")).to_be_visible()
            page.get_by_label("Model").select_option("fake/fake-model-large")
            page.get_by_role("button", name="New session").click()
            box = page.get_by_label("Message", exact=True)
            expect(box).to_be_focused()
            expect(page.get_by_text("No messages yet")).to_be_visible()

            # Shift+Enter is a new line; Enter sends. The reply streams into one text node.
            box.type("Make a plan")
            box.press("Shift+Enter")
            box.type("in two steps")
            expect(box).to_have_value("Make a plan\nin two steps")
            model.delta_delay = 0.15
            box.press("Enter")
            expect(box).to_have_value("")
            user = page.locator(".msg.user").last
            expect(user).to_contain_text("Make a plan\nin two steps")
            reply = page.locator(".msg.assistant").last
            expect(reply).to_have_attribute("data-status", "streaming", timeout=30_000)
            expect(reply.locator(".msg-body")).to_contain_text("Here")
            page.evaluate(
                "window.streamNode = document.querySelector('.msg.assistant:last-child .msg-body')"
                ".firstChild"
            )
            expect(reply.locator(".msg-body")).to_contain_text("Read the")
            assert page.evaluate(
                "window.streamNode.isConnected && window.streamNode.data.includes('Read the')"
            ), "chunks append to the same text node"
            expect(reply).to_have_attribute("data-status", "completed", timeout=30_000)
            model.delta_delay = 0.02
            expect(reply.locator(".md ol li")).to_have_count(2)
            expect(reply.locator(".md strong")).to_have_text("code")
            expect(reply.locator(".md pre code span.k").first).to_have_text("def")
            screenshots(page, "chat")

            # Reload: the same session opens again with its history.
            page.reload()
            expect(page.locator(".msg.user")).to_contain_text("Make a plan")
            expect(page.locator(".msg.assistant .md pre code span.k").first).to_have_text("def")
            expect(page.locator(".session[aria-current=true]")).to_be_visible()

            # Stop a long reply mid-stream.
            model.reply, model.delta_delay = LONG_REPLY, 0.05
            box.fill("Take your time")
            box.press("Enter")
            reply = page.locator(".msg.assistant").last
            expect(reply.locator(".msg-body")).to_contain_text("slowly slowly", timeout=30_000)
            page.get_by_role("button", name="Stop").click()
            expect(reply).to_have_attribute("data-status", "aborted", timeout=30_000)
            expect(reply.locator(".msg-status")).to_have_text("stopped")
            expect(page.get_by_role("button", name="Stop")).to_be_hidden()
            stopped = reply.locator(".msg-body").inner_text()
            assert 0 < len(stopped) < len(LONG_REPLY.strip())

            # A permission request appears inline; allowing it lets the reply finish.
            prompt = ask_to_run(page, model, "echo hi", "The command printed hi.")
            expect(prompt).to_contain_text("echo hi")
            screenshots(page, "chat-permission")
            prompt.get_by_role("button", name="Allow once").click()
            expect(prompt).to_contain_text("Allowed once.")
            reply = page.locator(".msg.assistant").last
            expect(reply.locator(".md")).to_have_text("The command printed hi.", timeout=30_000)
            model.bash_command = None

            # End the session; it moves below the open ones. A new one starts empty; clicking
            # the ended one brings its history back, and Restore reopens it.
            page.get_by_role("button", name="End session").click()
            page.get_by_role("dialog").get_by_role("button", name="End session").click()
            expect(page.get_by_text("This session has ended.")).to_be_visible()
            ended = page.locator("[data-group=ended] .session")
            expect(ended).to_have_count(1)
            expect(ended.locator(".dot.live")).to_have_count(0)
            page.get_by_role("button", name="New session").click()
            expect(page.get_by_text("No messages yet")).to_be_visible()
            expect(page.locator("[data-group=open] .session .dot.live")).to_have_count(1)
            screenshots(page, "chat-new-session")
            page.set_viewport_size({"width": 360, "height": 740})
            page.get_by_role("button", name="← Sessions").click()
            expect(ended).to_be_visible()
            screenshots(page, "chat-sessions", viewports=("phone",))
            ended.click()
            expect(page.locator(".msg.user").first).to_contain_text("Make a plan")
            page.get_by_role("button", name="Restore session").click()
            expect(page.locator("[data-group=open] .session .dot.live")).to_have_count(2)
            expect(page.get_by_label("Message", exact=True)).to_be_visible()

            # Dark mode by the toggle, kept across pages.
            page.get_by_role("button", name="Switch to dark mode").click()
            expect(page.locator("html")).to_have_attribute("data-theme", "dark")

            # Delete the machine, after confirming.
            page.get_by_role("link", name="Machines").click()
            expect(page.locator("html")).to_have_attribute("data-theme", "dark")
            page.get_by_role("button", name="Switch to light mode").click()
            page.locator("li.machine", has_text="laptop").get_by_role(
                "button", name="Delete"
            ).click()
            page.get_by_role("dialog").get_by_role("button", name="Delete machine").click()
            expect(page.get_by_role("heading", name="Create your first machine")).to_be_visible()

            # Sign out, and back in with the form.
            page.get_by_role("button", name="Sign out", exact=True).click()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            screenshots(page, "sign-in")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Create your first machine")).to_be_visible()
        finally:
            if machine is not None:
                machine.stop()
                print("machine process:", *machine.lines, sep="\n")  # shown if the test fails
            assert server.output is not None
            print("server:", *server.output.lines, sep="\n")

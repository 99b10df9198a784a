"""One real opencode turn seen in the browser: its tool cards, the diff of what it wrote,
the todo list and the cost line; then the turn undone (the file back on disk) and redone.

The worker's folder is a git repository: opencode keeps the snapshots its diffs and
undo need only there.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, Server, open_new_session, running, screenshots, send

pytestmark = pytest.mark.slow

BEFORE = "def greet():\n    return 'hello'\n"
AFTER = "def greet(name):\n    # say hello\n    return f'hello {name}'\n"
TODOS = [
    {"content": "Read <b>app.py</b>", "status": "completed", "priority": "high"},
    {"content": "Run the tests", "status": "completed", "priority": "medium"},
    {"content": "Greet by name", "status": "in_progress", "priority": "medium"},
]


@pytest.fixture
def git_app(tmp_path: Path) -> Path:
    """The worker's folder ``projects/app``: a git repository with ``app.py`` committed."""
    app = tmp_path / "projects" / "app"
    app.mkdir(parents=True)
    (app / "app.py").write_text(BEFORE)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "start"]):
        subprocess.run([*git, *args], cwd=app, check=True)
    return app


def test_a_turn_shows_its_cards_diff_todos_and_cost_then_undo_and_redo(
    git_app: Path, page: Page, chat: Chat, model: FakeModelServer
) -> None:
    """Read, an allowed command, a write and a todo update show; the diff; undo and redo."""
    target = git_app / "app.py"
    model.tool_calls = [
        ("read", {"filePath": str(target)}),
        ("bash", {"command": "printf 'tests <b>pass</b>\\n'", "description": "Run the tests"}),
        ("write", {"filePath": str(target), "content": AFTER}),
        ("todowrite", {"todos": TODOS}),
    ]
    model.before_tool_reply = "Let me look. "
    model.after_tool_reply = "Greeting by **name** now."
    open_new_session(page, chat)
    box = page.get_by_label("Message", exact=True)
    box.fill("Greet by name")
    box.press("Enter")
    reply = page.locator(".msg.assistant").last
    prompts = reply.locator(".prompt")
    # The command, then the write: each asks, each is allowed from the browser.
    for done in range(2):
        prompts.nth(done).get_by_role("button", name="Allow once").click(timeout=60_000)
    expect(reply).to_have_attribute("data-status", "completed", timeout=90_000)

    cards = reply.locator(".tool-card")
    expect(cards).to_have_count(4, timeout=30_000)
    names = cards.locator(".tool-name").all_text_contents()
    assert names == ["read", "bash", "write", "todowrite"]
    for i in range(4):
        expect(cards.nth(i)).to_have_attribute("data-state", "completed")
    assert target.read_text() == AFTER

    # The diff of the written file, as text, lines coloured by kind.
    diff = reply.locator(".diff-card")
    expect(diff).to_be_visible(timeout=30_000)
    expect(diff.locator("summary").first).to_contain_text("Changed 1 file")
    expect(diff.locator(".diff-add-count").first).to_have_text("+3")
    expect(diff.locator(".diff-del-count").first).to_have_text("−2")
    diff.locator("summary").first.click()
    file = diff.locator(".diff-file")
    expect(file.locator(".diff-name")).to_have_text("app.py")
    file.locator("summary").click()
    expect(file.locator(".diff-add")).to_have_count(3)
    expect(file.locator(".diff-del")).to_have_count(2)
    expect(file.locator(".diff-add").nth(1)).to_have_text("+    # say hello")
    expect(page.locator("#changes-panel .change-name")).to_have_text(["app.py"])

    # The todo list beside the conversation, markup as text; the cost line of the reply.
    todos = page.locator("#todo-panel .todo-text")
    expect(todos).to_have_text([t["content"] for t in TODOS])
    expect(page.locator("#todo-count")).to_have_text("2/3")
    expect(reply.locator(".msg-usage")).to_contain_text("tokens in")
    expect(reply.locator(".msg-usage")).to_contain_text("$")
    # Wide: the reply from its first card down to its diff; on a phone: the diff.
    wide, narrow = reply.locator(".tool-card").first, diff.locator(".diff-file").first
    screenshots(page, "conversation", prepare=lambda: show(page, wide, narrow))

    # Undo: the machine reverts the turn, the file is back on disk, the transcript says so.
    reply.get_by_role("button", name="Undo").click()
    bar = page.locator("#undo-bar")
    expect(bar).to_contain_text("Undone", timeout=60_000)
    wait_for_file(page, target, BEFORE)
    expect(reply).to_have_class(re.compile(r"\bundone\b"))
    expect(page.locator(".msg.user").last).to_have_class(re.compile(r"\bundone\b"))
    expect(reply.get_by_role("button", name="Undo")).to_be_hidden()
    expect(page.locator("#changes-panel")).to_be_hidden()  # no file of the session is changed
    user = page.locator(".msg.user").last
    screenshots(page, "undone", prepare=lambda: show(page, user, user))
    # Redo: the file as the turn wrote it again, nothing marked undone.
    bar.get_by_role("button", name="Redo").click()
    expect(bar).to_be_hidden(timeout=60_000)
    wait_for_file(page, target, AFTER)
    expect(page.locator(".msg.undone")).to_have_count(0)
    expect(page.locator("#changes-panel .change-name")).to_have_text(["app.py"])
    # After a reload the reply still offers Undo; undone again, a new message starts over:
    # it is not undone itself, and the undone turn can no longer be redone.
    page.reload()
    page.locator(".msg.assistant").last.get_by_role("button", name="Undo").wait_for()
    reply = page.locator(
        f'[data-key="{page.locator(".msg.assistant").last.get_attribute("data-key")}"]'
    )
    reply.get_by_role("button", name="Undo").click()
    expect(bar).to_contain_text("Undone", timeout=60_000)
    wait_for_file(page, target, BEFORE)
    model.tool_calls = None
    model.reply = "Starting over."
    fresh = send(page, "Start over")
    expect(fresh).to_contain_text("Starting over.", timeout=60_000)
    expect(fresh).to_have_attribute("data-status", "completed", timeout=30_000)
    expect(fresh).not_to_have_class(re.compile(r"\bundone\b"))
    expect(reply).to_have_class(re.compile(r"\bundone\b"))
    expect(bar).to_be_hidden()
    assert target.read_text() == BEFORE


def show(page: Page, wide: Locator, narrow: Locator) -> None:
    """Scroll the conversation so ``wide`` (or on a phone ``narrow``) starts at the top."""
    size = page.viewport_size
    element = wide if size is not None and size["width"] > 600 else narrow
    element.evaluate("(e) => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(50)


def wait_for_file(page: Page, path: Path, content: str) -> None:
    """Until ``path`` holds ``content`` (the machine writes it), for at most a minute.

    A file being rewritten (an undo replaces it) may be missing for a moment: not yet.
    """
    for _ in range(600):
        if _text_of(path) == content:
            return
        page.wait_for_timeout(100)
    assert _text_of(path) == content


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


HOSTILE_NAME = '<img src=x onerror="window.pwned=1">.py'
HOSTILE = {
    "part_id": "turn-diff",
    "message_id": "msg_1",
    "body": {
        "agent_message_id": "msg_a",
        "more_files": 2,
        "files": [
            {
                "file": HOSTILE_NAME,
                "status": "modified",
                "additions": 1,
                "deletions": 0,
                "patch": "@@ -0,0 +1 @@\n+<script>window.pwned=1</script>\x1b[31mred\x1b[0m\n",
                "patch_size": 5 * 1024 * 1024,
                "binary": False,
            },
            {
                "file": "logo.png",
                "status": "added",
                "additions": 0,
                "deletions": 0,
                "patch": "",
                "patch_size": 120,
                "binary": True,
            },
        ],
    },
}


def test_the_diff_viewer_keeps_names_and_patches_inert(page: Page, tmp_path: Path) -> None:
    """A file name and a patch with markup and ANSI render as text; binary and truncation said."""
    with running(Server(tmp_path / "data")) as server:
        page.goto(f"{server.url}/login")
        page.evaluate(
            """async (part) => {
                const { diffCard } = await import("/static/js/diff.js");
                const card = diffCard(part);
                card.id = "card";
                document.body.append(card);
                for (const d of card.querySelectorAll("details")) d.open = true;
                card.open = true;
            }""",
            HOSTILE,
        )
        card = page.locator("#card")
        expect(card.locator("summary").first).to_have_text("Changed 4 files +1 −0")
        expect(card.locator(".diff-name").first).to_have_text(
            '<img src=x onerror="window.pwned=1">.py'
        )
        expect(card.locator(".diff-add")).to_have_text("+<script>window.pwned=1</script>red")
        expect(card.locator("img, script")).to_have_count(0)
        expect(card).to_contain_text("Showing the first")
        expect(card).to_contain_text("of 5.0 MB")
        expect(card).to_contain_text("Binary file: no diff shown.")
        expect(card).to_contain_text("2 more files not listed.")
        assert page.evaluate("() => window.pwned") is None

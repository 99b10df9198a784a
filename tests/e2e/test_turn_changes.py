"""One real opencode turn seen in the browser: its tool cards, the diff of what it wrote,
the todo list and the cost line; then the turn undone (the file back on disk) and redone.

The worker's folder is a git repository: opencode keeps the snapshots its diffs and
undo need only there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from orchestrator.testing.fake_model import FakeModelServer
from tests.e2e.harness import Chat, open_new_session, screenshots

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
    screenshots(page, "turn-diff")

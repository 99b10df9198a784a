"""A session of 10,000 messages: the browser shows its newest page and loads earlier ones."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import attrs
from playwright.sync_api import Page, expect

from orchestrator.domain.ids import MachineToken
from orchestrator.domain.paging import MESSAGE_PAGE
from tests.e2e.harness import Server, running, sign_in
from tests.integration.harness import create_user_and_machine, server_database

#: Questions answered in the seeded session: twice as many messages.
TURNS = 5_000
MODEL = "fake/small"


@attrs.frozen
class Seeded:
    machine_id: str
    worker_id: str
    session_id: str


async def _session(data_dir: Path, token: MachineToken, root: Path) -> Seeded:
    """alice's machine with a worker and one session titled "Long history" (machine offline)."""
    async with server_database(data_dir, fast=True) as backend:
        found = await backend.find_user("alice")
        assert found is not None
        user = found[0].user_id
        await backend.go_online(token, str(root))
        worker = await backend.add_worker(user, token.machine_id, "app", None)
        await backend.update_worker_models(token, worker.worker_id, [MODEL])
        session = await backend.start_session(user, worker.worker_id, MODEL)
        await backend.rename_session(user, session.chat_session_id, "Long history")
        await backend.go_offline(token)
        return Seeded(token.machine_id, worker.worker_id, session.chat_session_id)


def seed_long_session(data_dir: Path, tmp_path: Path, turns: int = TURNS) -> Seeded:
    """alice's session of ``turns`` answered questions, the messages written straight to SQLite.

    Also what ``benchmarks/long_history.py`` measures against.
    """
    token = MachineToken.parse(create_user_and_machine(data_dir))
    (tmp_path / "root" / "app").mkdir(parents=True)
    # Playwright's own event loop runs in this thread, so the backend gets a thread of its own.
    with ThreadPoolExecutor(1) as pool:
        seeded = pool.submit(asyncio.run, _session(data_dir, token, tmp_path / "root")).result()
    start = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000)
    rows: list[tuple[str, str, str, str, int, str | None]] = []
    for n in range(turns):
        asked, answer = f"msg_q{n:05d}", f"msg_a{n:05d}"
        rows.append((asked, seeded.session_id, "user", f"question {n}", start + 2 * n, None))
        rows.append(
            (answer, seeded.session_id, "assistant", f"answer {n}", start + 2 * n + 1, asked)
        )
    db = sqlite3.connect(data_dir / "orchestrator.sqlite3")
    with db:
        db.executemany(
            "INSERT INTO chat_messages (message_id, chat_session_id, role, content, status,"
            " timestamp, reply_to) VALUES (?, ?, ?, ?, 'completed', ?, ?)",
            rows,
        )
    db.close()
    return seeded


def test_a_long_session_shows_its_latest_messages_and_loads_earlier_ones(
    page: Page, tmp_path: Path
) -> None:
    """10,000 messages: the newest page shows at once, earlier pages load above on request."""
    data_dir = tmp_path / "data"
    seeded = seed_long_session(data_dir, tmp_path)
    with running(Server(data_dir)) as server:
        sign_in(page, server.url, "alice")
        page.goto(
            f"{server.url}/chat?machine={seeded.machine_id}&worker={seeded.worker_id}"
            f"&session={seeded.session_id}"
        )
        messages = page.locator("#messages li.msg")
        last = f"answer {TURNS - 1}"
        expect(messages.last).to_contain_text(last)
        expect(messages).to_have_count(MESSAGE_PAGE)
        # Only the newest page came: the first question of the session is nowhere yet.
        expect(page.get_by_text("question 0", exact=True)).to_have_count(0)
        oldest_shown = f"question {TURNS - MESSAGE_PAGE // 2}"
        expect(messages.first).to_contain_text(oldest_shown)

        # Dispatched, not clicked: a click first scrolls the button into view, and reaching
        # the top loads the page before by itself; the click then waits for the button and
        # loads one more (seen in CI: 150 messages).
        page.get_by_role("button", name="Load earlier messages").dispatch_event("click")
        expect(messages).to_have_count(2 * MESSAGE_PAGE)
        expect(messages.first).to_contain_text(f"question {TURNS - MESSAGE_PAGE}")
        # The earlier page went above, in order, and the newest answer stays last.
        expect(messages.nth(MESSAGE_PAGE)).to_contain_text(oldest_shown)
        expect(messages.last).to_contain_text(last)
        # Replies of the earlier page are rendered as Markdown like the newest ones.
        expect(messages.nth(1).locator(".msg-text.md")).to_have_text(
            f"answer {TURNS - MESSAGE_PAGE}"
        )

        # A new message appends at the bottom; the pages loaded so far stay.
        page.get_by_role("combobox", name="Message").fill("one more")
        page.get_by_role("button", name="Send").click()
        expect(messages.last).to_contain_text("one more")
        expect(messages).to_have_count(2 * MESSAGE_PAGE + 1)

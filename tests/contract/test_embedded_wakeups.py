"""Server-wide watchers of the embedded backend wake only for what they show.

The notifier watches every session's open turns and waiting requests, and every
browser of a session its requests. A session's title, status or abort request
changes none of those: it must not re-run their queries (with 50 sessions
streaming, every claim, title and end re-ran three server-wide queries and each
browser's requests). What they do show still wakes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, aclosing

import anyio
import pytest

from orchestrator.adapters.embedded.backend import SQLiteBackend
from orchestrator.domain.chat import ChatSessionStatus, SessionUpdate
from orchestrator.domain.ids import UserId
from orchestrator.domain.ports import Backend
from orchestrator.domain.replies import PermissionAsk
from tests.contract.conftest import SQLITE_ONLY, Chat, claimed

pytestmark = [pytest.mark.anyio, SQLITE_ONLY]


async def _read_all(updates: AsyncIterator[object], read: anyio.Event) -> None:
    async for _ in updates:
        read.set()


async def settled(feed_wakes: Callable[[], int]) -> int:
    """The feed's wake count once every woken watcher has re-read (a few loop passes)."""
    for _ in range(20):
        await anyio.sleep(0)
    await anyio.sleep(0.05)
    return feed_wakes()


async def test_session_changes_wake_no_server_wide_watcher_and_requests_wake_theirs(
    backend: Backend, alice: UserId, chat: Chat
) -> None:
    assert isinstance(backend, SQLiteBackend)
    feed = backend._store.feed
    session_id = chat.session.chat_session_id
    reply = await claimed(backend, alice, chat)
    async with AsyncExitStack() as stack, anyio.create_task_group() as tg:
        watches = [
            backend.watch_open_turns(),
            backend.watch_waiting_permissions(None),
            backend.watch_waiting_questions(None),
            backend.watch_finished_replies(alice, 10),
            backend.watch_requests(alice, session_id),
        ]
        for updates in watches:
            first = anyio.Event()
            tg.start_soon(_read_all, await stack.enter_async_context(aclosing(updates)), first)
            await first.wait()
        before = await settled(lambda: feed.wakes)

        await backend.rename_session(alice, session_id, "A new title")
        await backend.update_session(
            chat.token, session_id, SessionUpdate(status=ChatSessionStatus.IDLE, title="t")
        )
        await backend.request_abort(alice, session_id)
        assert await settled(lambda: feed.wakes) == before, "nothing they show changed"

        await backend.record_permission(
            chat.token, reply.message_id, PermissionAsk("p1", "bash", "ls")
        )
        # The three request watchers (permissions and questions share a topic).
        assert await settled(lambda: feed.wakes) == before + 3
        await backend.complete_message(chat.token, reply.message_id, "done")
        # Its turn ended (open turns, finished replies) and its request expired.
        assert await settled(lambda: feed.wakes) == before + 3 + 5
        tg.cancel_scope.cancel()

"""Port methods that are the same in every backend, written once over a smaller one.

The SQLite backend, Convex and the in-memory fake inherit these: each reads the
caller's arguments the same way and leaves one short method to the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.domain import workers
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.ids import ChatSessionId, MachineId, UserId
from orchestrator.domain.model import Worker
from orchestrator.domain.paging import (
    MESSAGE_PAGE,
    MESSAGES,
    Page,
    decode_cursor,
    make_page,
    page_limit,
)
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy

#: A new worker's folder and optional name, checked (see ``domain.workers.worker_place``).
Place = tuple[str, str | None]


def _message_id(message: ChatMessage) -> str:
    return message.message_id


class AddsWorkers:
    """``add_worker``: the directory and name checked here, the worker stored by the backend."""

    if TYPE_CHECKING:

        async def _add_worker(
            self, user: UserId, machine_id: MachineId, place: Place, policy: PermissionPolicy
        ) -> Worker: ...

    async def add_worker(
        self,
        user: UserId,
        machine_id: MachineId,
        directory: str,
        name: str | None,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> Worker:
        place = workers.worker_place(directory, name)
        return await self._add_worker(user, machine_id, place, permission_policy)


class PagesMessages:
    """``list_messages_page``: the cursor and limit read here, one page read by the backend."""

    if TYPE_CHECKING:

        async def _messages_page(
            self, user: UserId, session_id: ChatSessionId, after: str | None, count: int
        ) -> tuple[list[ChatMessage], bool]: ...

    async def list_messages_page(
        self,
        user: UserId,
        session_id: ChatSessionId,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[ChatMessage]:
        count = page_limit(limit, MESSAGE_PAGE)
        after = decode_cursor(cursor, MESSAGES, session_id)
        items, more = await self._messages_page(user, session_id, after, count)
        return make_page(items, more, MESSAGES, session_id, _message_id)

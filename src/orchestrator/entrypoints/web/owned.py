"""Handlers that are one backend call on the signed-in user's record named in the URL.

Many routes of the browser API take the same steps: the signed-in user (401
otherwise), the ID in the URL (404 when it cannot exist, or is someone
else's), one backend call with both, and its result answered as ``{key: record}``.
:func:`owned` takes those steps, and :func:`owned_with` the same with one value
read from the request's body; a module only says which call and which key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from orchestrator.domain.ids import UserId
from orchestrator.domain.ports import Backend
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import Body, PathId, read_body, record_response
from orchestrator.entrypoints.web.state import BACKEND

IdT = TypeVar("IdT", bound=str)
V = TypeVar("V")

Handler = Callable[[web.Request], Awaitable[web.Response]]
#: The backend method a handler calls, given the backend (e.g. ``lambda b: b.get_session``).
Call = Callable[[Backend], Callable[[UserId, IdT], Awaitable[object]]]
#: The same for a method that also takes a value from the body.
CallWith = Callable[[Backend], Callable[[UserId, IdT, V], Awaitable[object]]]


def owned(key: str, param: PathId[IdT], call: Call[IdT], *, status: int = 200) -> Handler:
    """A handler answering ``{key: call(user, the URL's ID)}`` with ``status``."""

    async def handle(request: web.Request) -> web.Response:
        method = call(request.app[BACKEND])
        found = await method(require_user(request), param.of(request))
        return record_response(key, found, status=status)

    return handle


def owned_with(
    key: str, param: PathId[IdT], read: Callable[[Body], V], call: CallWith[IdT, V]
) -> Handler:
    """A handler answering ``{key: call(user, the URL's ID, read(the body))}``."""

    async def handle(request: web.Request) -> web.Response:
        value = read(await read_body(request))
        method = call(request.app[BACKEND])
        return record_response(key, await method(require_user(request), param.of(request), value))

    return handle

"""The browser's API for directory commands: browse, create folders, clone, follow progress.

Same conventions as :mod:`.user_api`: a session cookie on every call, the CSRF
token on every state change, someone else's IDs are 404, records as in
:mod:`orchestrator.adapters.wire`. A command for an offline machine
waits (``queued``: true) and runs when the machine is back.

``POST /api/machines/{id}/tree`` is a convenience for the folder browser: it
queues a ``list_dir`` and waits up to ``wait`` seconds (default
:data:`TREE_WAIT_SECONDS`, at most :data:`MAX_TREE_WAIT_SECONDS`) for the
page, answering 200 with the finished command, or 202 with the command still
pending or running (follow it with ``/api/commands/{id}/stream``). It is a
POST, not a GET, because it creates a record: a GET would let any other site
queue commands through the user's browser.
"""

from __future__ import annotations

from typing import Final

import anyio
from aiohttp import web

from orchestrator.adapters.wire import error_body
from orchestrator.domain.commands import Command, CommandArguments, CommandKind, parse_kind
from orchestrator.domain.errors import InvalidInput, OrchestratorError
from orchestrator.domain.ids import CommandId, UserId
from orchestrator.domain.model import MachineStatus
from orchestrator.domain.ports import ServerBackend
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.owned import owned
from orchestrator.entrypoints.web.payload import (
    COMMAND,
    MACHINE,
    Body,
    queued_response,
    read_body,
    record_json,
)
from orchestrator.entrypoints.web.state import BACKEND
from orchestrator.entrypoints.web.streams import EventStream, closing, tracked

QUEUED_NOTICE: Final = "The machine is offline; the command will run when it comes back."
TREE_WAIT_SECONDS: Final = 10.0
MAX_TREE_WAIT_SECONDS: Final = 30.0
BAD_WAIT: Final = (
    f"The field 'wait' must be a number of seconds from 0 to {MAX_TREE_WAIT_SECONDS:g}."
)


def _flag(body: Body, key: str) -> bool:
    value = body.data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"The field '{key}' must be true or false.")
    return value


def _wait(body: Body) -> float:
    value = body.data.get("wait", TREE_WAIT_SECONDS)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(BAD_WAIT)
    if not 0 <= value <= MAX_TREE_WAIT_SECONDS:
        raise InvalidInput(BAD_WAIT)
    return float(value)


def _arguments(body: Body) -> CommandArguments:
    return CommandArguments(
        path=body.optional_string("path") or "",
        parents=_flag(body, "parents"),
        url=body.optional_string("url"),
        cursor=body.optional_string("cursor"),
    )


async def _queued_answer(
    backend: ServerBackend, user: UserId, command: Command, status: int
) -> web.Response:
    machine = await backend.get_machine(user, command.machine_id)
    waits = not command.finished and machine.status is not MachineStatus.ONLINE
    return queued_response("command", command, waits=waits, notice=QUEUED_NOTICE, status=status)


async def create_command(request: web.Request) -> web.Response:
    """``POST /api/machines/{machine_id}/commands {kind, path, parents?, url?, cursor?}``."""
    user = require_user(request)
    machine_id = MACHINE.of(request)
    body = await read_body(request)
    kind = parse_kind(body.string("kind"))
    backend = request.app[BACKEND]
    command = await backend.create_command(user, machine_id, kind, _arguments(body))
    return await _queued_answer(backend, user, command, 201)


#: ``GET /api/machines/{machine_id}/commands``: the latest commands, newest first.
list_commands = owned("commands", MACHINE, lambda backend: backend.list_commands)

#: ``GET /api/commands/{command_id}``.
get_command = owned("command", COMMAND, lambda backend: backend.get_command)

#: ``POST /api/commands/{command_id}/cancel``: pending ones fail now, running ones stop.
cancel_command = owned("command", COMMAND, lambda backend: backend.cancel_command)


async def _until_finished(backend: ServerBackend, user: UserId, command_id: CommandId) -> None:
    async with closing(backend.watch_command(user, command_id)) as updates:
        async for command in updates:
            if command.finished:
                return


async def tree(request: web.Request) -> web.Response:
    """``POST /api/machines/{machine_id}/tree {path?, cursor?, wait?}``: list, wait a bit."""
    user = require_user(request)
    machine_id = MACHINE.of(request)
    body = await read_body(request, allow_empty=True)
    arguments = CommandArguments(
        path=body.optional_string("path") or "", cursor=body.optional_string("cursor")
    )
    wait = _wait(body)
    backend = request.app[BACKEND]
    command = await backend.create_command(user, machine_id, CommandKind.LIST_DIR, arguments)
    with anyio.move_on_after(wait):
        await _until_finished(backend, user, command.command_id)
    command = await backend.get_command(user, command.command_id)
    return await _queued_answer(backend, user, command, 200 if command.finished else 202)


async def command_stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/commands/{command_id}/stream``: SSE ``command`` events until it finishes.

    Each event's data is ``{"command": Command}``: at once, then after every
    change (claimed, progress, finished); the stream ends after the finished
    one. A failure is one ``error`` event, then the end.
    """
    user = require_user(request)
    command_id = COMMAND.of(request)
    backend = request.app[BACKEND]
    await backend.get_command(user, command_id)  # 404 before the stream starts
    stream = await EventStream.open(request)

    async def relay(done: anyio.CancelScope) -> None:
        try:
            async with closing(backend.watch_command(user, command_id)) as updates:
                async for command in updates:
                    await stream.send("command", record_json("command", command))
                    if command.finished:
                        break
        except OrchestratorError as exc:
            await stream.send("error", error_body(exc))
        done.cancel()

    with tracked(request):
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream.keepalive)
                tg.start_soon(relay, tg.cancel_scope)
        except* ConnectionResetError:
            pass  # the browser went away; it reconnects and gets the current state
    return stream.response


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the directory-command API."""
    router.add_post("/api/machines/{machine_id}/tree", tree)
    router.add_post("/api/commands/{command_id}/cancel", cancel_command)
    router.add_get("/api/commands/{command_id}/stream", command_stream)

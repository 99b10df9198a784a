"""The API machine processes use, under ``/api/machine/`` (declared in ``adapters.machine_api``).

Every request carries ``Authorization: Bearer <machine_id>:<machine_secret>``;
the backend checks the secret on each call. Failed checks count against the
caller's address, which is refused with 429 once it used up its attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar, get_args

import anyio
import anyio.abc
import attrs
from aiohttp import WSMsgType, web

from orchestrator.adapters.machine_api import (
    MACHINE_METHODS,
    REUSE_FLAG,
    SUBSCRIPTIONS,
    Argument,
    ListFrame,
    MachineMethod,
    is_record,
    record_fields,
    reuse_items,
)
from orchestrator.adapters.wire import (
    MACHINE_API_PREFIX,
    MACHINE_WS_PATH,
    converter,
    error_body,
    lease_from_fields,
)
from orchestrator.application import machines
from orchestrator.application.live import LiveIntake, LiveRelay
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.chat import ChatMessage
from orchestrator.domain.errors import (
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    OrchestratorError,
    TextGap,
)
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineId,
    MachineToken,
    MessageId,
    WorkerId,
    WorkerToken,
)
from orchestrator.domain.lease import Lease
from orchestrator.domain.model import normalize_relative_path, validate_name
from orchestrator.domain.ports import Backend
from orchestrator.entrypoints.web import machine_chat, machine_commands
from orchestrator.entrypoints.web.machine_chat import read_enum, read_int
from orchestrator.entrypoints.web.parsing import parse_json
from orchestrator.entrypoints.web.payload import Body, parse_id, read_body
from orchestrator.entrypoints.web.state import BACKEND, LIVE, TOKEN_LIMITER
from orchestrator.entrypoints.web.streams import closing, tracked

MISSING_CREDENTIALS: Final = (
    "Send the machine token as 'Authorization: Bearer <machine_id>:<machine_secret>'."
)
MAX_ROOT_LENGTH: Final = 4096
#: A worker's problem is one sentence naming its folder (a path of up to MAX_ROOT_LENGTH).
MAX_PROBLEM_LENGTH: Final = 2 * MAX_ROOT_LENGTH
MAX_SUBSCRIPTIONS: Final = 32
WS_HEARTBEAT_SECONDS: Final = 20.0
#: A live event carries at most one part (tool input and output bounded to 64 KiB each).
WS_MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024
#: A body up to this size is read before the token is checked (one backend call, not two).
PRE_AUTH_BODY_BYTES: Final = 64 * 1024

T = TypeVar("T")

log = logging.getLogger(__name__)


class Presence:
    """Open machine WebSockets; a machine whose last one closed goes offline after a grace."""

    def __init__(
        self, backend: Backend, grace_seconds: float, live: LiveRelay | None = None
    ) -> None:
        self.backend = backend
        self.live = live
        self.grace_seconds = grace_seconds
        self.open: dict[MachineId, int] = {}
        self.pending: dict[MachineId, asyncio.Task[None]] = {}
        self.closed = False

    def connected(self, machine_id: MachineId) -> None:
        """A WebSocket of the machine opened; a pending disconnect is called off."""
        self.open[machine_id] = self.open.get(machine_id, 0) + 1
        task = self.pending.pop(machine_id, None)
        if task is not None:
            task.cancel()

    def disconnected(self, token: MachineToken) -> None:
        """A WebSocket closed; with none left, mark the machine offline after the grace."""
        machine_id = token.machine_id
        left = self.open.get(machine_id, 1) - 1
        if left > 0:
            self.open[machine_id] = left
            return
        self.open.pop(machine_id, None)
        if self.closed:
            return  # the server is stopping, not the machine
        self.pending[machine_id] = asyncio.create_task(
            self._offline_after_grace(token), name=f"machine-gone-{machine_id}"
        )

    async def _offline_after_grace(self, token: MachineToken) -> None:
        try:
            await asyncio.sleep(self.grace_seconds)
            flush = self.live.flush if self.live is not None else None
            await machines.end_replies_of_gone_machine(self.backend, token, flush)
            if self.live is not None:
                self.live.forget_machine(token.machine_id)  # events sent later are refused
            await self.backend.go_offline(token)
            log.info("Machine %s disconnected: marked offline", token.machine_id)
        except OrchestratorError as exc:
            log.warning("Could not mark disconnected machine offline: %s", exc.message)
        finally:
            if self.pending.get(token.machine_id) is asyncio.current_task():
                del self.pending[token.machine_id]

    async def close(self) -> None:
        """Cancel the pending disconnects (the server is stopping)."""
        self.closed = True
        tasks = list(self.pending.values())
        self.pending.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


PRESENCE: Final = web.AppKey("machine_presence", Presence)


def _compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _token(request: web.Request) -> MachineToken:
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not raw:
        raise AuthenticationFailed(MISSING_CREDENTIALS)
    return MachineToken.parse(raw)


async def _checked(request: web.Request, call: Callable[[MachineToken], Awaitable[T]]) -> T:
    """Run ``call`` with the request's token, under the per-machine and total limits."""
    token = _token(request)
    return await request.app[TOKEN_LIMITER].attempt(
        "machine:" + token.machine_id, str(token), lambda: call(token)
    )


def _problem(body: Body, key: str) -> str | None:
    problem = body.optional_string(key)
    if problem is not None and (not problem.strip() or len(problem) > MAX_PROBLEM_LENGTH):
        raise InvalidInput(
            f"A worker's problem must be a sentence of 1-{MAX_PROBLEM_LENGTH} characters."
        )
    return problem


def _root_directory(body: Body, key: str) -> str:
    root = body.string(key)
    if not root or len(root) > MAX_ROOT_LENGTH or "\x00" in root:
        raise InvalidInput(f"The root directory must be a path of 1-{MAX_ROOT_LENGTH} characters.")
    return root


def _name(body: Body, key: str) -> str | None:
    name = body.optional_string(key)
    return validate_name(name, "Worker name") if name else None


Reader = Callable[[Body, str], object]

#: How the machine API reads each type of argument from a body (``key`` is its name).
READERS: Final[dict[object, Reader]] = {
    str: Body.string,
    str | None: Body.optional_string,
    int: read_int,
    Sequence[str]: Body.string_list,
    AgentCatalog: lambda body, _key: AgentCatalog(
        tuple(body.string_list("agents")), tuple(body.string_list("commands"))
    ),
    Lease | None: lambda body, _key: lease_from_fields(body.data),
    WorkerId: lambda body, key: WorkerId(parse_id(body.string(key), "worker")),
    WorkerToken: lambda body, key: WorkerToken.parse(body.string(key)),
    **machine_chat.CHAT_READERS,
    **machine_commands.COMMAND_READERS,
}
#: Arguments whose name asks for more than their type.
FIELDS: Final[dict[str, Reader]] = {
    "root_directory": _root_directory,
    "directory": lambda body, key: normalize_relative_path(body.string(key)),
    "name": _name,
    "problem": _problem,
    **machine_commands.COMMAND_FIELDS,
}
#: Calls that go through a use case rather than straight to the backend.
USE_CASES: Final[dict[str, Callable[..., Awaitable[object]]]] = {
    "update_worker_models": machines.update_worker_models,
    "update_worker_agents": machines.update_worker_agents,
}


def _read(argument: Argument, body: Body) -> object:
    key, kind, default = argument.name, argument.kind, argument.default
    if argument.optional and key not in body.data:
        return default
    if kind is str and default is not inspect.Parameter.empty:
        return body.optional_string(key) or default
    if key in FIELDS:
        return FIELDS[key](body, key)
    if kind in READERS:
        return READERS[kind](body, key)
    inner = [arg for arg in get_args(kind) if arg is not type(None)]
    if len(inner) == 1 and kind == inner[0] | None:
        return (
            None
            if body.data.get(key) is None
            else _read(attrs.evolve(argument, kind=inner[0]), body)
        )
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return read_enum(body, key, kind)
    if isinstance(kind, type) and is_record(kind):
        return kind(*(_read(field, body) for field in record_fields(kind)))
    raise TypeError(f"The machine API cannot read an argument of type {kind!r}.")


def read_arguments(method: MachineMethod, body: Body) -> tuple[list[object], dict[str, object]]:
    """The arguments of ``method`` after the token, read from ``body`` in their order."""
    positional = [_read(a, body) for a in method.arguments if not a.keyword_only]
    keywords = {a.name: _read(a, body) for a in method.arguments if a.keyword_only}
    return positional, keywords


async def _dispatch(
    backend: Backend,
    method: MachineMethod,
    token: MachineToken,
    body: Body,
    live: LiveRelay | None = None,
) -> object:
    if method.name == "register_worker":
        worker_token = WorkerToken.parse(body.string("worker_token"))
        if worker_token.machine_id != token.machine_id:
            raise InvalidInput("This worker token was issued for another machine.")
    if live is not None and method.name in ("complete_message", "end_reply"):
        # Text the server holds for the reply is stored before the reply ends.
        await live.settle(MessageId(parse_id(body.string("message_id"), "message")))
    positional, keywords = read_arguments(method, body)
    if method.name in USE_CASES:
        return await USE_CASES[method.name](backend, token, *positional, **keywords)
    port_method: Callable[..., Awaitable[object]] = getattr(backend, method.name)
    result = await port_method(token, *positional, **keywords)
    if live is not None and isinstance(result, ChatMessage) and method.name == "claim_message":
        live.prepare_soon(token, result)  # its first live event then needs no backend read
    return result


async def call(request: web.Request) -> web.Response:
    """``POST /api/machine/{method}``: one ``MachineBackend`` call, answered ``{"value": ...}``."""
    method = MACHINE_METHODS.get(request.match_info["method"])
    if method is None:
        raise NotFound("There is no such machine API method.")
    backend = request.app[BACKEND]
    live = request.app.get(LIVE)

    async def authenticated_call(token: MachineToken) -> object:
        length = request.content_length
        if length is None or length > PRE_AUTH_BODY_BYTES:
            # Nobody gets the server to read megabytes before proving who they are.
            await backend.authenticate(token)
        body = await read_body(request, allow_empty=True)
        return await _dispatch(backend, method, token, body, live)

    value = await _checked(request, authenticated_call)
    return web.json_response({"value": converter.unstructure(value)})


class _Channel:
    """One machine's WebSocket: its subscriptions and a lock so frames never interleave."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        backend: Backend,
        token: MachineToken,
        live: LiveRelay | None = None,
    ) -> None:
        self.ws = ws
        self.backend = backend
        self.token = token
        self.live = live
        self.intake: LiveIntake | None = None
        self.lock = anyio.Lock(fast_acquire=True)  # per frame: no loop pass when free
        self.subscriptions: dict[int, anyio.CancelScope] = {}

    async def ack(self, numbers: list[int]) -> None:
        """Tell the machine these live events are stored."""
        if not self.ws.closed:
            await self.send({"ack": numbers})

    async def receive_live(self, request: dict[str, object], tg: anyio.abc.TaskGroup) -> None:
        """A live event (``{"live": n, "event": {...}}``) or a ``{"sync": session_id}``.

        A sync stores in the background: the socket's other sessions never wait for a write.
        Events go through :class:`LiveIntake`: in order per session, and a session whose
        reply is being read from the backend holds back none of the others.
        """
        if self.live is not None and self.intake is None:
            self.intake = LiveIntake(self.live, tg)
        if "sync" in request:
            if self.intake is not None and isinstance(request["sync"], str):
                self.intake.sync(ChatSessionId(request["sync"]))
            return
        number = request.get("live")

        async def refuse(exc: OrchestratorError) -> None:
            refusal: dict[str, object] = {"refused": number, **error_body(exc)}
            if isinstance(exc, TextGap):
                refusal["stored_length"] = exc.stored_length
            await self.send(refusal)

        try:
            if self.intake is None:
                raise NotFound("This server does not take live events.")
            if not isinstance(number, int) or isinstance(number, bool):
                raise InvalidInput("A live event needs an integer number in 'live'.")
            raw = request.get("event")
            if not isinstance(raw, dict):
                raise InvalidInput("The 'event' of a live event must be a JSON object.")
            event = machine_chat.live_event(Body(raw))
        except OrchestratorError as exc:
            await refuse(exc)
            return
        await self.intake.submit(self.token, event, refuse, self.ack, number)

    async def send(self, frame: dict[str, object]) -> None:
        async with self.lock:
            # UTF-8 rather than \u escapes: work frames carry whole messages.
            await self.ws.send_json(frame, dumps=_compact_json)

    async def handle(self, raw: str, tg: anyio.abc.TaskGroup) -> None:
        try:
            parsed = parse_json(raw, malformed="The message is not valid JSON.")
        except InvalidInput as exc:
            await self.send({"id": None, **error_body(exc)})
            return
        request: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        batch = request.get("batch")
        if isinstance(batch, list):  # live frames sent together, handled in order
            for item in batch:
                await self.receive_live(item if isinstance(item, dict) else {"live": None}, tg)
            return
        if "live" in request or "sync" in request:
            await self.receive_live(request, tg)
            return
        sub_id = request.get("id")
        if not isinstance(sub_id, int) or isinstance(sub_id, bool):
            await self.send(
                {
                    "id": None,
                    "error": "Every message needs an integer 'id'.",
                    "type": "InvalidInput",
                }
            )
            return
        if request.get("unsubscribe"):
            if scope := self.subscriptions.pop(sub_id, None):
                scope.cancel()
            return
        name = request.get("subscribe")
        args = request.get("args", {})
        error: OrchestratorError | None = None
        if not isinstance(name, str) or name not in SUBSCRIPTIONS:
            error = InvalidInput(
                f"Unknown subscription {name!r}; known: {', '.join(SUBSCRIPTIONS)}."
            )
        elif not isinstance(args, dict):
            error = InvalidInput("The 'args' of a subscription must be a JSON object.")
        elif sub_id in self.subscriptions:
            error = InvalidInput(f"Subscription {sub_id} is already open.")
        elif len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            error = InvalidInput(f"A connection holds at most {MAX_SUBSCRIPTIONS} subscriptions.")
        if error is not None:
            await self.send({"id": sub_id, **error_body(error)})
            return
        method = SUBSCRIPTIONS[str(name)]
        positional, keywords = read_arguments(method, Body(args))
        watch: Callable[..., AsyncIterator[object]] = getattr(self.backend, method.name)
        source = watch(self.token, *positional, **keywords)
        scope = anyio.CancelScope()
        self.subscriptions[sub_id] = scope
        tg.start_soon(self._run, sub_id, source, scope, request.get(REUSE_FLAG) is True)

    async def _run(
        self,
        sub_id: int,
        source: AsyncIterator[object],
        scope: anyio.CancelScope,
        reuse: bool = False,
    ) -> None:
        """Send each value; with ``reuse``, a list's items sent before go as their index."""
        with scope:
            try:
                async with closing(source) as values:
                    previous: list[object] | None = None  # stays None without ``reuse``
                    async for value in values:
                        sent = reuse_items(previous, value, converter.unstructure)
                        if reuse and isinstance(value, list):
                            previous = value
                        frame = sent.as_json() if isinstance(sent, ListFrame) else {"value": sent}
                        await self.send({"id": sub_id, **frame})
            except OrchestratorError as exc:
                await self.send({"id": sub_id, **error_body(exc)})
            except ConnectionResetError:
                pass  # the machine went away; the read loop ends the connection
            finally:
                if self.subscriptions.get(sub_id) is scope:
                    del self.subscriptions[sub_id]


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /api/machine/ws``: subscriptions pushed to the machine as they change."""
    backend = request.app[BACKEND]
    machine = await _checked(request, backend.authenticate)
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_SECONDS, max_msg_size=WS_MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    channel = _Channel(ws, backend, _token(request), request.app.get(LIVE))
    presence = request.app.get(PRESENCE)
    if presence is not None:
        presence.connected(machine.machine_id)
    with tracked(request):
        try:
            async with anyio.create_task_group() as tg:
                async for message in ws:
                    if message.type is WSMsgType.TEXT:
                        await channel.handle(message.data, tg)
                tg.cancel_scope.cancel()
        except* ConnectionResetError:
            pass  # the machine went away; it reconnects and subscribes again
        finally:
            if presence is not None:
                presence.disconnected(channel.token)
    return ws


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the machine API."""
    router.add_get(MACHINE_WS_PATH, websocket)
    router.add_post(MACHINE_API_PREFIX + "/{method}", call, name=machine_chat.MACHINE_CALL_ROUTE)

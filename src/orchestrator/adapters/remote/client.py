"""The machine's ports (machines, chat, directory commands) as a client of ``orchestrator serve``.

Every method is one call of the machine API, generated from its declaration in
:mod:`orchestrator.adapters.machine_api`; subscriptions ride its WebSocket.
Errors the server raised arrive as the same domain exception with the same
message; a server that cannot be reached is
:class:`~orchestrator.domain.errors.BackendUnavailable`. Subscriptions survive
dropped connections and server restarts (see :class:`._transport.MachineApiClient`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, cast, overload

from orchestrator.adapters.machine_api import MACHINE_METHODS, SUBSCRIPTIONS, ListFrame
from orchestrator.adapters.remote._declared import Declared
from orchestrator.adapters.remote._transport import MachineApiClient
from orchestrator.domain.ports import MachineSide

P = ParamSpec("P")
R = TypeVar("R")


class _Call(Declared[MachineSide, MachineApiClient, P, R]):
    """A port method as a machine API call: ``client.<name>(token, ...)`` posts it."""

    declared = MACHINE_METHODS.keys()

    def _bind(self, client: MachineApiClient) -> Callable[P, Coroutine[Any, Any, R]]:
        method = MACHINE_METHODS[self.name]

        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            token, body = method.request(args, kwargs)
            value = await client._call(method.name, token, **body)
            if method.result is type(None):
                return cast(R, None)
            return client._structure(value, cast("type[R]", method.result))

        return call


class _Subscription(Generic[P, R]):
    """A port's ``watch_*`` method as a machine API subscription that survives reconnects."""

    def __init__(self, method: Callable[Concatenate[MachineSide, P], AsyncIterator[R]]) -> None:
        self.name, self.method = next(
            (name, m) for name, m in SUBSCRIPTIONS.items() if m.name == method.__name__
        )
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> Self: ...

    @overload
    def __get__(self, client: MachineApiClient, owner: type) -> Callable[P, AsyncIterator[R]]: ...

    def __get__(
        self, client: MachineApiClient | None, owner: type
    ) -> Self | Callable[P, AsyncIterator[R]]:
        if client is None:
            return self
        name, method = self.name, self.method

        async def watch(*args: P.args, **kwargs: P.kwargs) -> AsyncIterator[R]:
            token, body = method.request(args, kwargs)
            previous: list[object] | None = None
            async for value in client.subscribe(token, name, body):
                if isinstance(value, ListFrame):
                    previous = client._rebuild(previous, value, method.result)
                    yield cast(R, previous)
                    continue
                structured = client._structure(value, cast("type[R]", method.result))
                previous = structured if isinstance(structured, list) else None
                yield structured

        return watch


class RemoteMachineBackend(MachineApiClient):
    """The backend of a machine process whose server is ``orchestrator serve`` at ``server_url``.

    ``timeouts`` (e.g. ``MachineSettings``) gives the per-call timeout and the
    reconnect backoff cap; keyword arguments override it.
    """

    # MachineBackend
    authenticate = _Call(MachineSide.authenticate)
    go_online = _Call(MachineSide.go_online)
    heartbeat = _Call(MachineSide.heartbeat)
    go_offline = _Call(MachineSide.go_offline)
    list_own_workers = _Call(MachineSide.list_own_workers)
    register_worker = _Call(MachineSide.register_worker)
    worker_heartbeat = _Call(MachineSide.worker_heartbeat)
    worker_offline = _Call(MachineSide.worker_offline)
    update_worker_models = _Call(MachineSide.update_worker_models)
    update_worker_agents = _Call(MachineSide.update_worker_agents)
    watch_own_workers = _Subscription(MachineSide.watch_own_workers)
    # ChatMachineBackend
    watch_work = _Subscription(MachineSide.watch_work)
    list_session_messages = _Call(MachineSide.list_session_messages)
    claim_message = _Call(MachineSide.claim_message)
    append_chunk = _Call(MachineSide.append_chunk)
    save_part = _Call(MachineSide.save_part)
    append_part_text = _Call(MachineSide.append_part_text)
    complete_message = _Call(MachineSide.complete_message)
    end_reply = _Call(MachineSide.end_reply)
    update_session = _Call(MachineSide.update_session)
    report_undo = _Call(MachineSide.report_undo)
    record_permission = _Call(MachineSide.record_permission)
    resolve_permission = _Call(MachineSide.resolve_permission)
    record_question = _Call(MachineSide.record_question)
    resolve_question = _Call(MachineSide.resolve_question)
    # CommandMachineBackend
    watch_commands = _Subscription(MachineSide.watch_commands)
    claim_command = _Call(MachineSide.claim_command)
    report_progress = _Call(MachineSide.report_progress)
    finish_command = _Call(MachineSide.finish_command)

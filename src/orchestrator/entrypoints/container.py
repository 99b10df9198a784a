"""The composition root: one container that builds every part from settings."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from aiohttp import web
from dependency_injector import containers, providers

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.opencode import ProcessPolicy, find_opencode, open_opencode_runtime
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.application.sessions import UnavailableRuntime
from orchestrator.domain.agent import AgentRuntime
from orchestrator.domain.errors import AgentUnavailable
from orchestrator.domain.ports import Clock, IdGenerator, SecretHasher
from orchestrator.entrypoints.settings import MachineSettings, ServerSettings
from orchestrator.entrypoints.web import create_app

T = TypeVar("T")


async def embedded_backend(
    settings: ServerSettings, clock: Clock, ids: IdGenerator, hasher: SecretHasher
) -> AsyncIterator[SQLiteBackend]:
    """The SQLite backend in the data directory, closed on shutdown."""
    backend = await open_backend(settings.database_path, clock=clock, ids=ids, hasher=hasher)
    try:
        yield backend
    finally:
        await backend.close()


async def remote_backend(settings: MachineSettings) -> AsyncIterator[RemoteMachineBackend]:
    """A client of ``orchestrator serve`` for a machine on another host."""
    backend = RemoteMachineBackend(settings.server_url, settings)
    try:
        yield backend
    finally:
        await backend.close()


@asynccontextmanager
async def opencode_runtime(settings: MachineSettings) -> AsyncIterator[AgentRuntime]:
    """Real opencode; if it is not installed, a runtime that says how to install it.

    A context manager, not a container resource: its task group must be entered
    and left by the same task, which the caller's ``async with`` guarantees.
    """
    try:
        binary = find_opencode()
    except AgentUnavailable as exc:
        yield UnavailableRuntime(exc.message)
        return
    async with open_opencode_runtime(
        binary=binary, policy=ProcessPolicy(settings.process_policy)
    ) as runtime:
        yield runtime


def build_web_app(
    backend: SQLiteBackend, hasher: SecretHasher, clock: Clock, settings: ServerSettings
) -> web.Application:
    return create_app(backend, hasher=hasher, clock=clock, settings=settings)


class Container(containers.DeclarativeContainer):
    """Everything ``orchestrator`` runs, built from server and machine settings."""

    server_settings = providers.Dependency(instance_of=ServerSettings, default=ServerSettings())
    machine_settings = providers.Dependency(instance_of=MachineSettings, default=MachineSettings())

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(RandomIds)
    hasher = providers.Singleton(Argon2Hasher, fast=server_settings.provided.fast_hashing)

    backend = providers.Resource(
        embedded_backend, settings=server_settings, clock=clock, ids=ids, hasher=hasher
    )
    machine_backend = providers.Resource(remote_backend, settings=machine_settings)
    agent_runtime = providers.Factory(opencode_runtime, settings=machine_settings)
    web_app = providers.Factory(
        build_web_app, backend=backend, hasher=hasher, clock=clock, settings=server_settings
    )


def bootstrap(
    server: ServerSettings | None = None, machine: MachineSettings | None = None
) -> Container:
    """A container for these settings; resources open lazily when first awaited."""
    container = Container()
    if server is not None:
        container.server_settings.override(server)
    if machine is not None:
        container.machine_settings.override(machine)
    return container


async def resolve(provider: providers.Provider[T]) -> T:
    """The provider's value, awaiting it when it is an async resource."""
    value: Any = provider()
    return cast(T, await value if inspect.isawaitable(value) else value)


@asynccontextmanager
async def running(container: Container) -> AsyncIterator[Container]:
    """Use ``container``; every resource it opened is closed on the way out."""
    try:
        yield container
    finally:
        pending = container.shutdown_resources()
        if pending is not None:
            await pending

"""The composition root: one container that builds every part from settings."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from aiohttp import web
from dependency_injector import containers, providers

from orchestrator.adapters.convex import open_convex_backend
from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.opencode import ProcessPolicy, find_opencode, open_opencode_runtime
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.application.sessions import UnavailableRuntime
from orchestrator.domain.agent import AgentRuntime
from orchestrator.domain.errors import AgentUnavailable, InvalidInput
from orchestrator.domain.ports import Backend, Clock, IdGenerator, MachineSide, SecretHasher
from orchestrator.entrypoints.settings import MachineSettings, ServerSettings
from orchestrator.entrypoints.web import create_app

T = TypeVar("T")


CONVEX_SETUP_HINT = (
    "The Convex backend needs ORCHESTRATOR_SERVER_SECRET: set it to the value of the "
    "deployment's environment variable of the same name (see backend_convex/README.md)."
)


async def server_backend(
    settings: ServerSettings, clock: Clock, ids: IdGenerator, hasher: SecretHasher
) -> AsyncIterator[Backend]:
    """The embedded SQLite backend in the data directory, or Convex when a URL is set."""
    backend: Backend
    if settings.convex_url:
        if not settings.convex_server_secret:
            raise InvalidInput(CONVEX_SETUP_HINT)
        backend = open_convex_backend(
            settings.convex_url,
            server_secret=settings.convex_server_secret,
            transport=settings.convex_transport,
        )
    else:
        backend = await open_backend(settings.database_path, clock=clock, ids=ids, hasher=hasher)
    try:
        yield backend
    finally:
        await backend.close()


async def machine_side_backend(settings: MachineSettings) -> AsyncIterator[MachineSide]:
    """Convex directly when ``CONVEX_URL`` is set, else a client of ``orchestrator serve``."""
    backend: MachineSide
    if settings.convex_url:
        convex = open_convex_backend(settings.convex_url, transport=settings.convex_transport)
        backend = convex
        close = convex.close
    else:
        remote = RemoteMachineBackend(settings.server_url, settings)
        backend = remote
        close = remote.close
    try:
        yield backend
    finally:
        await close()


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
    backend: Backend, hasher: SecretHasher, clock: Clock, settings: ServerSettings
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
        server_backend, settings=server_settings, clock=clock, ids=ids, hasher=hasher
    )
    machine_backend = providers.Resource(machine_side_backend, settings=machine_settings)
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

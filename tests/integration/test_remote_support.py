"""Shared harness for the remote-client tests: the real app on a loopback port (no tests here)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import attrs
from aiohttp import web

from orchestrator.adapters.embedded import SQLiteBackend
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.system import Argon2Hasher, SystemClock
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web import create_app
from orchestrator.entrypoints.web.connections import GuardedSite
from tests.integration.harness import server_database


@attrs.define
class LiveServer:
    """``orchestrator serve``'s app on a real loopback port, restartable on the same port."""

    backend: SQLiteBackend
    data_dir: Path
    port: int = 0
    runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        settings = ServerSettings(data_dir=self.data_dir, port=self.port)
        hasher = Argon2Hasher(fast=True)
        app = create_app(self.backend, hasher=hasher, clock=SystemClock(), settings=settings)
        self.runner = web.AppRunner(app, shutdown_timeout=2)
        await self.runner.setup()
        # Guarded as `orchestrator serve` is: at most 64 connections per client address.
        site = GuardedSite(self.runner, settings)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@asynccontextmanager
async def live_server(data_dir: Path) -> AsyncIterator[LiveServer]:
    """The app over a fresh SQLite database in ``data_dir``, started; stopped afterwards."""
    async with server_database(data_dir, fast=True, poll_interval=0.05) as backend:
        live = LiveServer(backend, data_dir)
        await live.start()
        try:
            yield live
        finally:
            await live.stop()


def fast_client(url: str) -> RemoteMachineBackend:
    """A client with short timeouts and a quick reconnect, for tests."""
    return RemoteMachineBackend(
        url,
        request_timeout=timedelta(seconds=5),
        min_backoff=timedelta(milliseconds=20),
        max_backoff=timedelta(milliseconds=200),
    )

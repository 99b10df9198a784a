"""The web app over SQLite on a loopback port, shared by the benchmarks that time its requests."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.system import Argon2Hasher, RandomIds, SystemClock
from orchestrator.application import accounts
from orchestrator.domain.ids import UserId
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web import create_app
from orchestrator.testing.serving import serving

PASSWORD = "correct horse battery"


@attrs.frozen
class App:
    """The served app: its backend and hasher, the user alice (password PASSWORD), its URL."""

    backend: SQLiteBackend
    hasher: Argon2Hasher
    alice: UserId
    url: str


@asynccontextmanager
async def sqlite_app(**settings: Any) -> AsyncIterator[App]:
    """The app (argon2 defaults) over SQLite in a temporary directory, with alice; then gone."""
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        hasher, clock = Argon2Hasher(), SystemClock()
        backend = await open_backend(
            data_dir / "orchestrator.sqlite3", clock=clock, ids=RandomIds(), hasher=hasher
        )
        try:
            user = await accounts.create_user(backend, hasher, "alice", PASSWORD)
            server = ServerSettings(data_dir=data_dir, port=0, **settings)
            app = create_app(backend, hasher=hasher, clock=clock, settings=server)
            async with serving(app) as url:
                yield App(backend, hasher, user.user_id, url)
        finally:
            await backend.close()


async def sign_in(http: aiohttp.ClientSession, url: str) -> None:
    """Sign alice in on ``http`` (its cookie jar keeps the session)."""
    login = {"username": "alice", "password": PASSWORD}
    async with http.post(f"{url}/api/login", json=login) as response:
        assert response.status == 200, await response.text()

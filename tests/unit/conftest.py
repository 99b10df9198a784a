"""Fixtures shared by the web tests: the app on a loopback port, and a signed-in owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_web_support import Chat, Harness, online_worker, running_app


@pytest.fixture
async def web(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    """The app with the settings of the module's ``APP_OPTIONS`` (default: none changed)."""
    options: dict[str, Any] = getattr(request.module, "APP_OPTIONS", {})
    async with running_app(tmp_path, **options) as harness:
        yield harness


@pytest.fixture
async def chat(web: Harness) -> Chat:
    """alice, signed in, with an online worker that offers MODEL."""
    return await online_worker(web)


@pytest.fixture
async def owner(chat: Chat) -> Chat:
    """The same signed-in owner, for modules that speak of the owner rather than the chat."""
    return chat

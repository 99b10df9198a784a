"""Fixtures shared by the web tests: the app on a loopback port, and a signed-in owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.unit.test_web_support import Chat, Harness, online_worker, running_app


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Harness]:
    """The app with its default settings (modules that need others define their own ``web``)."""
    async with running_app(tmp_path) as harness:
        yield harness


@pytest.fixture
async def chat(web: Harness) -> Chat:
    """alice, signed in, with an online worker that offers MODEL."""
    return await online_worker(web)

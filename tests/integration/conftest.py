"""Fixtures shared by the integration tests."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchestrator.adapters.opencode import OpencodeRuntime
from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.testing.fake_model import FakeModelServer
from tests.contract.convex_harness import ConvexHarness, new_server_secret, running_harness
from tests.integration.harness import Server, opencode_or_skip, opencode_runtime, running_server
from tests.integration.test_remote_support import LiveServer, fast_client, live_server


@pytest.fixture(scope="module")
def harness() -> Iterator[ConvexHarness]:
    """The loopback Convex harness with a server secret, for one test module."""
    with running_harness(server_secret=new_server_secret()) as started:
        yield started


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The server's data folder under ``tmp_path`` (``serve`` makes it)."""
    return tmp_path / "data"


@pytest.fixture
def served(data_dir: Path) -> Iterator[Server]:
    """``orchestrator serve`` as a real subprocess on ``data_dir``, stopped afterwards."""
    with running_server(data_dir) as server:
        yield server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The real app with SQLite on a loopback port (modules may define their own ``server``)."""
    async with live_server(tmp_path) as live:
        yield live


@pytest.fixture
async def remote(server: LiveServer) -> AsyncIterator[RemoteMachineBackend]:
    """A machine-side client of ``server`` that reconnects quickly."""
    async with fast_client(server.url) as client:
        yield client


@pytest.fixture
def opencode_binary() -> Path:
    """The opencode binary; the test is skipped where it is not installed (see NEEDS_OPENCODE)."""
    return opencode_or_skip()


@pytest.fixture
def git_binary() -> str:
    """The git binary; the test is skipped where it is not installed (see NEEDS_GIT)."""
    found = shutil.which("git")
    if found is None:
        pytest.skip("git is not installed")
    return found


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModelServer]:
    """The fake model on loopback in the test's event loop (modules may define their own)."""
    async with FakeModelServer() as server:
        yield server


@pytest.fixture
def worker_directory(tmp_path: Path) -> Path:
    """An empty folder for a worker (modules may define their own)."""
    directory = tmp_path / "worker"
    directory.mkdir()
    return directory


@pytest.fixture
async def runtime(tmp_path: Path, fake_model: FakeModelServer) -> AsyncIterator[OpencodeRuntime]:
    """Real opencode against ``fake_model``, sandboxed under ``tmp_path`` (modules may redefine)."""
    async with opencode_runtime(tmp_path / "sandbox", fake_model) as started:
        yield started

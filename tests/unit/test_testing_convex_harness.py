"""The loopback Convex harness that tests and benchmarks import from the package."""

from __future__ import annotations

import pytest

from orchestrator.adapters.convex import ConvexBackend, HttpTransport
from orchestrator.testing.convex_harness import (
    ConvexHarness,
    new_server_secret,
    unavailable_reason,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_each_deployment_counts_its_own_calls_and_writes() -> None:
    """A call to one deployment is counted there, with its writes; a new one starts at none."""
    if reason := unavailable_reason():
        pytest.skip(reason)
    harness = ConvexHarness(server_secret=new_server_secret()).start()
    try:
        used = harness.new_deployment()
        backend = ConvexBackend(
            HttpTransport(used, timeout=10), server_secret=harness.server_secret
        )
        try:
            await backend.create_user("alice", "hash")
        finally:
            await backend.close()
        fresh = harness.new_deployment()
        assert sum(harness.calls(used).values()) >= 1
        assert harness.documents_written(used) >= 1
        assert (harness.calls(fresh), harness.documents_written(fresh)) == ({}, 0)
    finally:
        harness.stop()

"""The loopback Convex harness for tests (``orchestrator.testing.convex_harness``).

The harness runs the real TypeScript functions with convex-test behind
Convex's HTTP API on 127.0.0.1, so the real Python adapter reaches them. One
process serves every test; each test gets a fresh, empty deployment from it.
Here only what is pytest's: a test is skipped where the harness cannot run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from orchestrator.testing.convex_harness import (
    ConvexHarness,
    new_server_secret,
    unavailable_reason,
)

__all__ = ["ConvexHarness", "new_server_secret", "running_harness", "unavailable_reason"]


@contextmanager
def running_harness(*, server_secret: str | None) -> Iterator[ConvexHarness]:
    """A started harness, stopped on exit; skips the test where the harness cannot run."""
    if reason := unavailable_reason():
        pytest.skip(reason)
    started = ConvexHarness(server_secret=server_secret).start()
    try:
        yield started
    finally:
        started.stop()

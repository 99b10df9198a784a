"""Long-running processes keep their start-up objects out of later garbage collections.

A full collection scans every tracked object; the ~80,000 that importing and starting
the server or the machine process leaves made each one a 35-90 ms pause of every live
stream (``benchmarks/relay.py``). Once started, both freeze what they hold.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import cast

import anyio
import pytest

from orchestrator.application.machine_process import MachineProcess
from orchestrator.entrypoints.cli import run_until_signal
from orchestrator.entrypoints.runtime import freeze_startup_objects


class _Node:
    """A reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test run collects as before


def test_startup_objects_are_frozen_and_garbage_is_collected_first() -> None:
    kept = _Node()
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    freeze_startup_objects()
    assert gone() is None, "a cycle made before start-up ended is collected, not frozen"
    assert gc.get_freeze_count() > 1000
    tracked = gc.get_objects()
    assert not any(obj is kept for obj in tracked), "what start-up made is never scanned again"
    later = _Node()
    tracked = gc.get_objects()
    assert any(obj is later for obj in tracked), "what comes later is collected as before"


class _Started:
    """A machine process that is online at once and stops when asked."""

    def __init__(self) -> None:
        self.frozen_when_online: int | None = None
        self.stopped = False

    async def start(self) -> None:
        return None

    async def run(self) -> None:
        return None  # ends at once, as if its connection were closed for good

    async def stop(self) -> None:
        self.stopped = True


@pytest.mark.anyio
async def test_worker_start_freezes_once_the_machine_is_online() -> None:
    process = _Started()

    def online() -> None:
        process.frozen_when_online = gc.get_freeze_count()

    with anyio.fail_after(5):
        await run_until_signal(cast(MachineProcess, process), online)
    assert process.frozen_when_online is not None
    assert process.frozen_when_online > 1000
    assert process.stopped

"""The one Backoff: its delays, and the transports that wait with it."""

from __future__ import annotations

import logging
import random
from datetime import timedelta

import anyio
import pytest

from orchestrator.adapters.convex._transport import POLL_BACKOFF, HttpTransport
from orchestrator.adapters.remote._transport import MachineApiClient
from orchestrator.application.retry import Backoff

pytestmark = pytest.mark.anyio


def test_backoff_grows_with_attempts_and_stays_under_the_cap() -> None:
    """Full jitter: each delay is within [0, min(cap, base * 2^n)]."""
    backoff = Backoff(base=1, cap=8)
    assert backoff.delay(0, rng=lambda: 1.0) == 1
    assert backoff.delay(2, rng=lambda: 1.0) == 4
    assert backoff.delay(10, rng=lambda: 1.0) == 8
    assert backoff.delay(10, rng=lambda: 0.0) == 0
    assert backoff.delay(10_000, rng=lambda: 0.5) == 4


def test_backoff_delays_spread_over_the_whole_range() -> None:
    """Delays drawn from a real generator fill [0, ceiling], not only its top or bottom."""
    backoff = Backoff(base=1, cap=8)
    rng = random.Random(7)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (3, 8), (10, 8), (500, 8)]:
        delays = [backoff.delay(attempt, rng.random) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8
        assert min(delays) < ceiling * 0.2


def test_machine_api_client_reconnects_with_a_backoff_of_its_settings() -> None:
    """The machine API client's reconnect delays are its Backoff's, from its min and max."""
    client = MachineApiClient(
        "http://127.0.0.1:9",
        min_backoff=timedelta(seconds=1),
        max_backoff=timedelta(seconds=8),
        rng=random.Random(3),
    )
    assert client.reconnect == Backoff(base=1, cap=8)
    assert (client.min_backoff, client.max_backoff) == (timedelta(seconds=1), timedelta(seconds=8))
    same = random.Random(3)
    for failures in [0, 1, 2, 5, 500]:
        assert client.backoff(failures) == client.reconnect.delay(failures, same.random)


def test_convex_polling_waits_half_a_second_doubling_up_to_thirty() -> None:
    """A Convex poll's backoff starts at 0.5 s and is capped at 30 s unless told otherwise."""
    assert Backoff(base=0.5, cap=30.0) == POLL_BACKOFF


async def test_convex_polling_retries_a_failed_poll_with_its_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A watch that cannot reach the deployment polls again after each backoff delay."""
    transport = HttpTransport(
        "http://127.0.0.1:9", timeout=2, backoff=Backoff(base=0.001, cap=0.002)
    )
    assert transport.backoff == Backoff(base=0.001, cap=0.002)
    caplog.set_level(logging.WARNING, "orchestrator.adapters.convex._transport")
    watch = transport.watch("users:list", {})

    async def close_after_three_failures() -> None:
        while sum("trying again" in r.getMessage() for r in caplog.records) < 3:
            await anyio.sleep(0.001)
        await transport.close()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(close_after_three_failures)
            assert [value async for value in watch] == []
    retries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
    assert len(retries) >= 3
    assert all(line.endswith("trying again in 0.0 s") for line in retries)

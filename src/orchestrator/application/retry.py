"""Waiting out an unreachable backend: backoff with jitter, and loops that reconnect."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import attrs

from orchestrator.domain.errors import BackendUnavailable, OrchestratorError, RateLimited

T = TypeVar("T")

#: Failures that pass by themselves: the backend is down, or it asks us to slow down.
TRANSIENT = (BackendUnavailable, RateLimited)

#: Called with one line for the person watching the terminal.
Report = Callable[[str], None]


@attrs.frozen
class Backoff:
    """Exponential backoff with full jitter: delay *n* is uniform in [0, min(cap, base·2ⁿ)]."""

    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        return rng() * min(self.cap, self.base * 2.0 ** min(attempt, 30))


def _unreachable(group: BaseExceptionGroup[OrchestratorError]) -> OrchestratorError:
    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    assert isinstance(first, TRANSIENT)
    return first


async def retry_until_reachable(
    call: Callable[[], Awaitable[T]], backoff: Backoff, report: Report
) -> T:
    """Run ``call`` until the backend answers and does not ask to slow down; others propagate."""
    attempt = 0
    while True:
        try:
            return await call()
        except TRANSIENT as exc:
            wait = max(backoff.delay(attempt), 0.2)
            report(f"{exc.message} Retrying in {wait:.1f} s.")
            attempt += 1
            await anyio.sleep(wait)


async def keep_reachable(
    loop: Callable[[], Awaitable[None]], backoff: Backoff, report: Report, what: str
) -> None:
    """Run ``loop`` again whenever the backend becomes unreachable or limits us, with backoff.

    Also when the failure comes wrapped in a task group's exception group;
    anything else propagates.
    """
    attempt = 0
    while True:
        started = anyio.current_time()
        try:
            await loop()
            return
        except* TRANSIENT as group:
            if anyio.current_time() - started > backoff.cap:
                attempt = 0  # it had been working: start the backoff over
            wait = max(backoff.delay(attempt), 0.2)
            report(f"{_unreachable(group).message} Reconnecting ({what}) in {wait:.1f} s.")
            attempt += 1
            await anyio.sleep(wait)

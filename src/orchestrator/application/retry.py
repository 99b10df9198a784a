"""Waiting out an unreachable backend: backoff with jitter, and loops that reconnect."""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)


@attrs.define
class Connection:
    """The backend connection as the terminal shows it: one line when lost, one when back.

    Every loop of a machine process shares one, so an outage that all of them
    notice is still one "Reconnecting in 4 s." and one "Reconnected.".
    """

    report: Report
    down: bool = False

    def lost(self, error: OrchestratorError, wait: float) -> None:
        """Note a failed call; only the first one of an outage is reported."""
        if self.down:
            log.debug("%s Next try in %.1f s.", error.message, wait)
            return
        self.down = True
        self.report(f"{error.message} Reconnecting in {wait:.1f} s.")

    def back(self) -> None:
        """Note a call that worked; reported once after an outage."""
        if self.down:
            self.down = False
            self.report("Reconnected.")


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
    call: Callable[[], Awaitable[T]], backoff: Backoff, connection: Connection
) -> T:
    """Run ``call`` until the backend answers and does not ask to slow down; others propagate."""
    attempt = 0
    while True:
        try:
            result = await call()
        except TRANSIENT as exc:
            wait = max(backoff.delay(attempt), 0.2)
            connection.lost(exc, wait)
            attempt += 1
            await anyio.sleep(wait)
        else:
            connection.back()
            return result


async def keep_reachable(
    loop: Callable[[], Awaitable[None]], backoff: Backoff, connection: Connection
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
            connection.lost(_unreachable(group), wait)
            attempt += 1
            await anyio.sleep(wait)

"""Waiting in tests for something another task or process makes true, with a deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def until(check: Callable[[], object], seconds: float = 5, interval: float = 0.005) -> None:
    """Wait until ``check()`` is truthy, checking every ``interval``; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        while True:
            if check():
                return
            await anyio.sleep(interval)


async def eventually(
    fetch: Callable[[], Awaitable[T]], seconds: float = 5, interval: float = 0.005
) -> T:
    """Await ``fetch()`` until it gives something truthy and return that; fail after ``seconds``."""
    with anyio.fail_after(seconds):
        while True:
            if found := await fetch():
                return found
            await anyio.sleep(interval)

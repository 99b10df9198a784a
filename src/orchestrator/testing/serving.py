"""An aiohttp app served on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from aiohttp import web


@asynccontextmanager
async def serving(app: web.Application, *, shutdown_timeout: float = 1.0) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port and yield its base URL; stop it afterwards."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()

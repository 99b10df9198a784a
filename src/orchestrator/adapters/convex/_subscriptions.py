"""Live subscriptions from the official ``convex.ConvexClient``, run in a child process.

Why a child process: ``convex`` 0.8.1 runs its Rust ``block_on`` while holding
the GIL, so any blocking call of the client (``subscribe``, ``query``...)
freezes every thread of the process that made it, the event loop included,
and against a deployment that never answers it never returns. In a child of
its own, the GIL it holds is not ours: the web server and the machine process
keep serving, and the child can be killed. Calls do not go through the child
(they would queue behind each other there); they use Convex's HTTP API with
timeouts (see ``_transport``).

The pipe carries JSON lines. Parent to child:
``{"op": "subscribe", "id", "path", "args"}`` and ``{"op": "unsubscribe", "id"}``.
Child to parent: ``{"id", "value"}``, ``{"id", "convexError": {"message", "data"}}``
or ``{"id", "error"}`` (the raw message; the parent logs it). Values are in
Convex's JSON encoding. The child exits when its stdin closes.

The child is ``python -m orchestrator.adapters.convex._subscription_child URL
[module:factory]``; the factory (default ``convex:ConvexClient``) is what tests replace.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncGenerator
from contextlib import suppress
from typing import Any, Final

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream
from convex import ConvexError
from convex.values import convex_to_json, json_to_convex

from orchestrator.adapters.convex._errors import failed
from orchestrator.domain.errors import BackendUnavailable

log = logging.getLogger(__name__)

DEFAULT_FACTORY: Final = "convex:ConvexClient"
#: The child's module (kept apart, so the child imports only ``convex`` and the standard library).
CHILD: Final = "orchestrator.adapters.convex._subscription_child"
#: The largest line the child may send: Convex caps a query's result well below this.
MAX_LINE: Final = 64 * 1024 * 1024


class SubscriptionProcess:
    """The parent's side: one child process, shared by every watch of one transport."""

    def __init__(self, url: str, *, factory: str = DEFAULT_FACTORY) -> None:
        self.url = url
        self.factory = factory
        self._process: anyio.abc.Process | None = None
        self._lines: BufferedByteReceiveStream | None = None
        self._starting = anyio.Lock()
        self._pumping = anyio.Lock()
        self._arrived = anyio.Event()
        self._latest: dict[int, dict[str, Any]] = {}
        self._active: set[int] = set()
        self._next_id = 0
        self._dead = False
        self._closed = False

    async def _child(self) -> anyio.abc.Process:
        async with self._starting:
            if self._closed:
                raise BackendUnavailable("The Convex backend is closed.")
            if self._process is None or self._dead:
                await self._discard()
                self._process = await anyio.open_process(
                    [sys.executable, "-m", CHILD, self.url, self.factory],
                    stderr=None,  # the child's log lines go to our stderr, the server log
                )
                assert self._process.stdout is not None
                self._lines = BufferedByteReceiveStream(self._process.stdout)
                self._dead = False
            return self._process

    async def _send(self, message: dict[str, Any]) -> None:
        process = await self._child()
        assert process.stdin is not None
        try:
            await process.stdin.send(json.dumps(message).encode() + b"\n")
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self._dead = True
            raise self._gone() from exc

    def _gone(self) -> BackendUnavailable:
        return BackendUnavailable(
            f"The connection to the Convex deployment at {self.url} was lost. It will be retried."
        )

    async def _next(self, sub: int) -> dict[str, Any]:
        """The newest message for ``sub``; whoever waits reads the pipe for everyone."""
        while sub not in self._latest:
            if self._dead or self._closed:
                raise self._gone()
            if self._pumping.locked():
                await self._arrived.wait()
                continue
            async with self._pumping:
                try:
                    # Taking the lock may yield: the child can have died, or ``close``
                    # dropped its reader, meanwhile.
                    lines = self._lines
                    if lines is None or self._dead or self._closed:
                        raise self._gone()
                    line = await lines.receive_until(b"\n", MAX_LINE)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.DelimiterNotFound) as exc:
                    self._dead = True
                    raise self._gone() from exc
                except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                    self._dead = True
                    raise self._gone() from exc
                finally:
                    arrived, self._arrived = self._arrived, anyio.Event()
                    arrived.set()
                message = json.loads(line)
                sent_for = int(message.pop("id"))
                if sent_for in self._active:
                    # Only the newest state of a query matters: a slow reader skips to it.
                    self._latest[sent_for] = message
        return self._latest.pop(sub)

    async def watch(self, path: str, args: dict[str, Any]) -> AsyncGenerator[Any, None]:
        """Each value the deployment pushes for the query (the same value may come again)."""
        self._next_id += 1
        sub = self._next_id
        self._active.add(sub)
        try:
            await self._send(
                {"op": "subscribe", "id": sub, "path": path, "args": convex_to_json(args)}
            )
            while True:
                message = await self._next(sub)
                if "value" in message:
                    yield json_to_convex(message["value"])
                elif "convexError" in message:
                    error = message["convexError"]
                    raise ConvexError(error["message"], json_to_convex(error["data"]))
                else:
                    raise failed(self.url, path, str(message.get("error")))
        finally:
            self._active.discard(sub)
            self._latest.pop(sub, None)
            if not (self._dead or self._closed):
                shielded = anyio.CancelScope(shield=True)
                with shielded, anyio.move_on_after(1), suppress(BackendUnavailable):
                    await self._send({"op": "unsubscribe", "id": sub})

    async def _discard(self) -> None:
        process, self._process, self._lines = self._process, None, None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            if process.stdin is not None:
                await process.stdin.aclose()
            with anyio.move_on_after(2):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()

    async def close(self) -> None:
        """Stop the child (its connection with it); every watch then ends."""
        self._closed = True
        arrived, self._arrived = self._arrived, anyio.Event()
        arrived.set()
        await self._discard()

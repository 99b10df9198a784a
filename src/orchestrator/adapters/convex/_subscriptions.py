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

Run as ``python -m orchestrator.adapters.convex._subscriptions URL [module:factory]``;
the factory (default ``convex:ConvexClient``) is what tests replace.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import AsyncGenerator, Callable
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
                    [sys.executable, "-m", __name__, self.url, self.factory],
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
                    assert self._lines is not None
                    line = await self._lines.receive_until(b"\n", MAX_LINE)
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
        await self._send({"op": "subscribe", "id": sub, "path": path, "args": convex_to_json(args)})
        try:
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


# --- the child -----------------------------------------------------------------------


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _follow(client: Any, sub: int, path: str, args: dict[str, Any]) -> None:
    subscription = client.subscribe(path, args)  # blocks this process only
    try:
        while True:
            try:
                value = await anext(subscription)
            except ConvexError as exc:
                _emit({"id": sub, "convexError": {"message": str(exc), "data": exc.data}})
                continue
            except StopAsyncIteration:
                _emit({"id": sub, "error": "the subscription ended"})
                return
            except Exception as exc:  # the Rust client raises bare Exceptions
                log.error("Convex subscription %s failed: %s", path, exc)
                _emit({"id": sub, "error": str(exc) or type(exc).__name__})
                return
            _emit({"id": sub, "value": convex_to_json(value)})
    finally:
        subscription.unsubscribe()


async def _serve(url: str, factory: Callable[[str], Any]) -> None:
    client = factory(url)
    loop = asyncio.get_running_loop()
    requests = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(requests), sys.stdin)
    following: dict[int, asyncio.Task[None]] = {}
    while line := await requests.readline():
        request = json.loads(line)
        sub = int(request["id"])
        if request["op"] == "subscribe":
            args: Any = json_to_convex(request["args"])
            following[sub] = asyncio.create_task(_follow(client, sub, request["path"], args))
        elif (task := following.pop(sub, None)) is not None:
            task.cancel()
    for task in following.values():
        task.cancel()


def _load(factory: str) -> Callable[[str], Any]:
    module, _, name = factory.partition(":")
    loaded: Callable[[str], Any] = getattr(importlib.import_module(module), name)
    return loaded


def main(argv: list[str]) -> None:
    """The child: follow the parent's subscriptions until its stdin closes."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    url, factory = argv[0], argv[1] if len(argv) > 1 else DEFAULT_FACTORY
    asyncio.run(_serve(url, _load(factory)))


if __name__ == "__main__":
    main(sys.argv[1:])

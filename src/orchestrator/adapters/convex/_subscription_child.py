"""The child process of ``_subscriptions``: the official client's subscriptions, as JSON lines.

Reads ``{"op": "subscribe" | "unsubscribe", ...}`` lines on stdin, writes each value
(or failure) of each subscription on stdout, exits when stdin closes. Blocking
calls of ``convex.ConvexClient`` (which hold the GIL) freeze only this process.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, Final

from convex import ConvexError
from convex.values import convex_to_json, json_to_convex

log = logging.getLogger(__name__)

DEFAULT_FACTORY: Final = "convex:ConvexClient"
#: The largest request line: a subscription's arguments.
MAX_LINE: Final = 64 * 1024 * 1024


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def _follow(client: Any, sub: int, path: str, args: dict[str, Any]) -> None:
    subscription = client.subscribe(path, args)  # blocks this process only
    while True:
        try:
            value = await anext(subscription)
        except ConvexError as exc:
            _emit({"id": sub, "convexError": {"message": str(exc), "data": exc.data}})
            continue
        except StopAsyncIteration:
            _emit({"id": sub, "error": "the subscription ended"})
            break
        except asyncio.CancelledError:
            # The client still holds the pending read; the subscription ends when it is
            # collected (unsubscribing now would make the client subscribe again first).
            raise
        except Exception as exc:  # the Rust client raises bare Exceptions
            log.error("Convex subscription %s failed: %s", path, exc)
            _emit({"id": sub, "error": str(exc) or type(exc).__name__})
            break
        _emit({"id": sub, "value": convex_to_json(value)})
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
    """Follow the parent's subscriptions until its stdin closes."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    url, factory = argv[0], argv[1] if len(argv) > 1 else DEFAULT_FACTORY
    asyncio.run(_serve(url, _load(factory)))


if __name__ == "__main__":
    main(sys.argv[1:])

"""What the Convex backend's parts (push, questions, parts, texts, tokens) call on it."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.adapters.convex._transport import Args, Kind

T = TypeVar("T")


class ConvexCalls:
    """The calls :class:`~orchestrator.adapters.convex.backend.ConvexBackend` provides."""

    if TYPE_CHECKING:

        async def _call(self, kind: Kind, path: str, args: Args) -> Any: ...
        async def _query(self, path: str, args: Args) -> Any: ...
        def _server(self, **args: Any) -> dict[str, Any]: ...
        def _watch(
            self, path: str, args: Args, decode: Callable[[Any], T]
        ) -> AsyncGenerator[T, None]: ...

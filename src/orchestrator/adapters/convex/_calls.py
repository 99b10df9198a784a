"""What the Convex backend's parts (push, questions, parts, texts, tokens) call on it,
the arguments every machine call starts with, and the reads of waiting lists."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.adapters.convex._pages import every_waiting, watch_waiting
from orchestrator.adapters.convex._transport import Args, Kind
from orchestrator.adapters.records import from_document
from orchestrator.domain.ids import MachineToken, UserId

T = TypeVar("T")


def machine_args(token: MachineToken, **args: Any) -> dict[str, Any]:
    """A machine's call arguments: its ID and secret, then ``args``."""
    return {"machineId": token.machine_id, "machineSecret": token.secret, **args}


class ConvexCalls:
    """The calls :class:`~orchestrator.adapters.convex.backend.ConvexBackend` provides."""

    if TYPE_CHECKING:

        async def _call(self, kind: Kind, path: str, args: Args) -> Any: ...
        async def _query(self, path: str, args: Args) -> Any: ...
        def _server(self, **args: Any) -> dict[str, Any]: ...
        def _watch(
            self, path: str, args: Args, decode: Callable[[Any], T]
        ) -> AsyncGenerator[T, None]: ...

    def _documents(self, path: str, args: Args) -> AsyncGenerator[Any, None]:
        """The values of a query as Convex returns them, now and after every change."""
        return self._watch(path, args, dict)

    async def _list_waiting(self, path: str, user: UserId | None, cls: type[T]) -> list[T]:
        """Every request of the waiting list ``path`` (``user``'s, or everyone's), oldest first."""
        found = await every_waiting(self._query, path, self._server(userId=user))
        return [from_document(w, cls) for w in found]

    async def _watch_waiting(
        self, path: str, user: UserId | None, cls: type[T]
    ) -> AsyncGenerator[list[T], None]:
        """The waiting list ``path`` now, and again after every change of any of its pages."""
        found = watch_waiting(self._query, self._documents, path, self._server(userId=user))
        async with aclosing(found):
            async for waiting in found:
                yield [from_document(w, cls) for w in waiting]

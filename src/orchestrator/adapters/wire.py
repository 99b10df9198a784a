"""What travels between ``orchestrator serve`` and its clients, shared by both sides.

Records are JSON objects with snake_case keys, timestamps as ISO-8601 strings
with their UTC offset, and enums as their values; a ``ChatMessage`` also
carries its derived ``completed`` flag, a ``Command`` its ``finished`` flag.
Errors travel as
``{"error": "<one sentence>", "type": "<class name in domain.errors>"}`` so a
client re-raises the very exception the server raised, message included.

Machine API (every request carries ``Authorization: Bearer <machine_id>:<secret>``):

* ``POST /api/machine/<method>`` with a JSON object of the method's arguments
  (see :mod:`orchestrator.adapters.machine_api`) answers ``{"value": ...}``;
* ``GET /api/machine/ws`` is a WebSocket: the client sends
  ``{"id": n, "subscribe": "<name>", "args": {...}}`` (or ``{"id": n,
  "unsubscribe": true}``) and the server pushes ``{"id": n, "value": ...}``
  each time the subscription yields, or ``{"id": n, "error": ..., "type": ...}``
  once when it fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Final

from orchestrator.adapters.records import json_converter
from orchestrator.domain import errors
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.lease import Lease

MACHINE_API_PREFIX: Final = "/api/machine"
MACHINE_WS_PATH: Final = f"{MACHINE_API_PREFIX}/ws"

#: HTTP status of each error class; a subclass uses the nearest listed ancestor.
ERROR_STATUS: Final[dict[type[OrchestratorError], int]] = {
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 400,
    errors.RateLimited: 429,
    errors.AuthenticationFailed: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.BackendUnavailable: 503,
    errors.BackendLimitExceeded: 507,
    errors.OrchestratorError: 500,
}


#: The one converter both the server and its clients use (see :mod:`.records`).
converter: Final = json_converter()


def status_for(exc: OrchestratorError) -> int:
    """The HTTP status that carries ``exc``."""
    for cls in type(exc).__mro__:
        if cls in ERROR_STATUS:
            return ERROR_STATUS[cls]
    return 500


def error_body(exc: OrchestratorError) -> dict[str, str]:
    """The JSON body that carries ``exc`` to a client."""
    return {"error": exc.message, "type": type(exc).__name__}


def _error_classes() -> dict[str, type[OrchestratorError]]:
    found: dict[str, type[OrchestratorError]] = {}
    pending: list[type[OrchestratorError]] = [OrchestratorError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def error_from_body(status: int, body: object) -> OrchestratorError:
    """The exception a server sent, rebuilt from its status and JSON body."""
    message = body.get("error") if isinstance(body, dict) else None
    kind = body.get("type") if isinstance(body, dict) else None
    cls = _error_classes().get(kind) if isinstance(kind, str) else None
    if cls is None:
        cls = next((c for c, s in ERROR_STATUS.items() if s == status), errors.BackendUnavailable)
        if status >= 500:
            cls = errors.BackendUnavailable
    if not isinstance(message, str) or not message:
        message = f"The server answered HTTP {status}."
    return cls(message)


def lease_fields(lease: Lease | None) -> dict[str, object]:
    """A machine process's lease as request fields (none without a lease)."""
    if lease is None:
        return {}
    return {"instance": lease.instance, "lease_ms": int(lease.duration.total_seconds() * 1000)}


def lease_from_fields(data: Mapping[str, object]) -> Lease | None:
    """The lease sent with a request, if any; InvalidInput if malformed."""
    instance, ms = data.get("instance"), data.get("lease_ms")
    if instance is None and ms is None:
        return None
    if not isinstance(instance, str) or not 0 < len(instance) <= MAX_INSTANCE_LENGTH:
        raise errors.InvalidInput(
            f"'instance' must be a string of 1-{MAX_INSTANCE_LENGTH} characters."
        )
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= MAX_LEASE_MS:
        raise errors.InvalidInput(f"'lease_ms' must be a whole number from 0 to {MAX_LEASE_MS}.")
    return Lease(instance, timedelta(milliseconds=ms))


MAX_INSTANCE_LENGTH = 64
MAX_LEASE_MS = 3_600_000

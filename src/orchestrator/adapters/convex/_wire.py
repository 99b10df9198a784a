"""What travels between the adapter and the Convex functions: records, and refusals.

Records arrive as the objects ``backend_convex/convex/lib/validators.ts``
describes: camelCased fields, ``null`` for an absent value, every number a
float (Convex numbers are IEEE doubles) and every timestamp milliseconds since
the epoch; :mod:`orchestrator.adapters.records` converts them. Refusals
arrive as ``ConvexError`` data ``{"kind", "message"}`` whose kind names a
class of :mod:`orchestrator.domain.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from orchestrator.adapters.records import from_document, to_document, when
from orchestrator.domain import errors
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    PermissionRequest,
    SessionWork,
)
from orchestrator.domain.commands import Command, CommandArguments, CommandResult
from orchestrator.domain.jobs import Job, JobDraft, JobRun
from orchestrator.domain.model import Machine, MachineSummary, User, Worker
from orchestrator.domain.permissions import PermissionPolicy
from orchestrator.domain.questions import QuestionRequest
from orchestrator.domain.times import to_ms as to_ms  # re-exported: ``wire.to_ms``

log = logging.getLogger("orchestrator.adapters.convex")

Record = Mapping[str, Any]


#: The domain errors a function may refuse with, by the ``kind`` it names.
ERROR_KINDS: Final[dict[str, type[errors.OrchestratorError]]] = {
    cls.__name__: cls
    for cls in (
        errors.InvalidInput,
        errors.InvalidToken,
        errors.PathOutsideRoot,
        errors.PayloadTooLarge,
        errors.AuthenticationFailed,
        errors.RateLimited,
        errors.PermissionDenied,
        errors.NotFound,
        errors.Conflict,
        errors.InvalidTransition,
        errors.TextGap,
        errors.MachineInUse,
    )
}


def error_from_data(data: object, fallback: str) -> errors.OrchestratorError:
    """The domain error a function's ``ConvexError`` data stands for."""
    if isinstance(data, Mapping):
        cls = ERROR_KINDS.get(str(data.get("kind")))
        message = data.get("message")
        if cls is not None and isinstance(message, str):
            return cls(message)
    # Not one of our functions' refusals: its text is for the log, not for a user.
    log.warning("Convex refused a call: %s (data: %r)", fallback, data)
    return errors.OrchestratorError(
        "The Convex deployment refused the call. The server log has the details."
    )


_when = when


def _maybe_when(ms: float | None) -> datetime | None:
    return None if ms is None else when(ms)


def maybe_ms(moment: datetime | None) -> int | None:
    return None if moment is None else to_ms(moment)


# Typed readers of the records the Convex functions return; :mod:`..records` converts.


def user(raw: Record) -> User:
    return from_document(raw, User)


def machine(raw: Record) -> Machine:
    return from_document(raw, Machine)


def machine_summary(raw: Record) -> MachineSummary:
    return from_document(raw, MachineSummary)


def worker(raw: Record) -> Worker:
    return from_document(raw, Worker)


def chat_session(raw: Record) -> ChatSession:
    return from_document(raw, ChatSession)


def chat_message(raw: Record) -> ChatMessage:
    return from_document(raw, ChatMessage)


def chat_chunk(raw: Record) -> ChatChunk:
    return from_document(raw, ChatChunk)


def permission(raw: Record) -> PermissionRequest:
    return from_document(raw, PermissionRequest)


def question(raw: Record) -> QuestionRequest:
    return from_document(raw, QuestionRequest)


def session_work(raw: Record) -> SessionWork:
    return from_document(raw, SessionWork)


def command(raw: Record) -> Command:
    return from_document(raw, Command)


def job(raw: Record) -> Job:
    return from_document(raw, Job)


def job_run(raw: Record) -> JobRun:
    return from_document(raw, JobRun)


def permission_policy_args(policy: PermissionPolicy) -> dict[str, Any]:
    """The policy as the Convex functions take it (camelCase keys)."""
    return to_document(policy)


def arguments_out(arguments: CommandArguments) -> dict[str, Any]:
    return to_document(arguments)


def result_out(result: CommandResult) -> dict[str, Any]:
    return to_document(result)


def draft_out(draft: JobDraft) -> dict[str, Any]:
    return to_document(draft)

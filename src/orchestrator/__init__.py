"""OpenCode Orchestrator: drive opencode agents on your machines from one web chat.

The public surface for embedding: the use cases (``accounts``, ``machines``),
the machine process, the ports to implement or call, the records and errors,
and the embedded backend. Fakes for tests live in ``orchestrator.testing``.
``Client`` talks to a running ``orchestrator serve`` with a user API token.
"""

from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.remote.user_client import Client
from orchestrator.application import accounts, machines
from orchestrator.application.machine_process import MachineProcess
from orchestrator.application.retry import Backoff
from orchestrator.domain.chat import ChatMessage, ChatSession, PermissionAnswer
from orchestrator.domain.commands import CommandArguments, CommandKind
from orchestrator.domain.errors import (
    AgentUnavailable,
    AuthenticationFailed,
    BackendUnavailable,
    Conflict,
    InvalidInput,
    InvalidToken,
    InvalidTransition,
    NotFound,
    OrchestratorError,
    PathOutsideRoot,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
)
from orchestrator.domain.ids import MachineId, MachineToken, UserId, WorkerId, WorkerToken
from orchestrator.domain.jobs import JobDraft
from orchestrator.domain.model import (
    Machine,
    MachineStatus,
    MachineSummary,
    User,
    Worker,
    WorkerCounts,
    WorkerStatus,
)
from orchestrator.domain.ports import (
    AccountBackend,
    Backend,
    Clock,
    IdGenerator,
    MachineBackend,
    SecretHasher,
    UserBackend,
)

__all__ = [
    "AccountBackend",
    "AgentUnavailable",
    "AuthenticationFailed",
    "Backend",
    "BackendUnavailable",
    "Backoff",
    "ChatMessage",
    "ChatSession",
    "Client",
    "Clock",
    "CommandArguments",
    "CommandKind",
    "Conflict",
    "IdGenerator",
    "InvalidInput",
    "InvalidToken",
    "InvalidTransition",
    "JobDraft",
    "Machine",
    "MachineBackend",
    "MachineId",
    "MachineProcess",
    "MachineStatus",
    "MachineSummary",
    "MachineToken",
    "NotFound",
    "OrchestratorError",
    "PathOutsideRoot",
    "PayloadTooLarge",
    "PermissionAnswer",
    "PermissionDenied",
    "RateLimited",
    "SQLiteBackend",
    "SecretHasher",
    "User",
    "UserBackend",
    "UserId",
    "Worker",
    "WorkerCounts",
    "WorkerId",
    "WorkerStatus",
    "WorkerToken",
    "accounts",
    "machines",
    "open_backend",
]

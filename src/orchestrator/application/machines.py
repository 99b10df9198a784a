"""Use cases for machines and their workers.

Each function validates what it is given, then asks the backend, which
enforces ownership and status transitions atomically.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from orchestrator.application.live import LiveRelay
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.chat import GONE_REASON, MessageStatus
from orchestrator.domain.errors import Conflict, InvalidInput, PathOutsideRoot
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineId,
    MachineToken,
    MessageId,
    UserId,
    WorkerId,
    WorkerToken,
)
from orchestrator.domain.model import (
    Machine,
    MachineSummary,
    Worker,
    normalize_relative_path,
    validate_name,
)
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy
from orchestrator.domain.ports import (
    ChatMachineBackend,
    Clock,
    MachineBackend,
    MaintenanceBackend,
    UserBackend,
)

MAX_MODELS = 500
MAX_MODEL_LENGTH = 200


# --- as a signed-in user ----------------------------------------------------


async def create_machine(
    backend: UserBackend, user: UserId, name: str
) -> tuple[Machine, MachineToken]:
    """Create a machine; the returned token is the only time its secret is seen."""
    return await backend.create_machine(user, validate_name(name, "Machine name"))


async def list_machines(backend: UserBackend, user: UserId) -> list[MachineSummary]:
    """The user's machines with worker counts by status."""
    return await backend.list_machines(user)


async def delete_machine(backend: UserBackend, user: UserId, machine_id: MachineId) -> None:
    """Delete a machine and its workers."""
    await backend.delete_machine(user, machine_id)


async def add_worker(
    backend: UserBackend,
    user: UserId,
    machine_id: MachineId,
    directory: str,
    name: str | None = None,
    permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
) -> Worker:
    """Add a ready worker bound to ``directory`` (relative to the machine's root)."""
    clean_name = validate_name(name, "Worker name") if name else None
    return await backend.add_worker(
        user, machine_id, normalize_relative_path(directory), clean_name, permission_policy
    )


async def set_worker_permission_policy(
    backend: UserBackend, user: UserId, worker_id: WorkerId, permission_policy: PermissionPolicy
) -> Worker:
    """Change what a worker's agent may do; it applies from the next opencode start."""
    return await backend.set_worker_permission_policy(user, worker_id, permission_policy)


async def issue_worker_token(
    backend: UserBackend, user: UserId, machine_id: MachineId
) -> WorkerToken:
    """A single-use token for registering a worker from the machine."""
    return await backend.issue_worker_token(user, machine_id)


async def approve_worker(backend: UserBackend, user: UserId, worker_id: WorkerId) -> Worker:
    """Approve a worker that registered from its machine."""
    return await backend.approve_worker(user, worker_id)


async def reject_worker(backend: UserBackend, user: UserId, worker_id: WorkerId) -> None:
    """Refuse a worker that registered from its machine."""
    await backend.reject_worker(user, worker_id)


async def remove_worker(backend: UserBackend, user: UserId, worker_id: WorkerId) -> None:
    """Remove a worker in any status."""
    await backend.remove_worker(user, worker_id)


async def list_workers(backend: UserBackend, user: UserId, machine_id: MachineId) -> list[Worker]:
    """The workers of one of the user's machines."""
    return await backend.list_workers(user, machine_id)


async def list_pending_workers(backend: UserBackend, user: UserId) -> list[Worker]:
    """Workers waiting for the user's approval."""
    return await backend.list_pending_workers(user)


# --- as the server ------------------------------------------------------------


async def mark_stale_machines_offline(
    backend: MaintenanceBackend,
    clock: Clock,
    window: timedelta,
    *,
    since: datetime | None = None,
    live: LiveRelay | None = None,
) -> list[MachineId]:
    """Set machines offline that sent no heartbeat within ``window`` (their replies end).

    Silence counts from ``since`` (when this server started) at the earliest:
    heartbeats missed while the server itself was down say nothing about a
    machine. Text the ``live`` relay holds is stored before the replies end.
    """
    now = clock.now()
    if since is not None and now - since < window:
        return []
    if live is not None:
        await live.flush_all()
    stale = await backend.mark_stale_machines_offline(now - window)
    if live is not None:
        for machine_id in stale:
            live.forget_machine(machine_id)
    return stale


async def end_replies_of_gone_machine(
    backend: ChatMachineBackend,
    token: MachineToken,
    flush: Callable[[ChatSessionId], Awaitable[None]] | None = None,
) -> list[MessageId]:
    """End the machine's streaming replies as interrupted, storing held live text first."""
    ended: list[MessageId] = []
    async for work in backend.watch_work(token):
        for item in work:
            reply = item.streaming_reply
            if reply is None:
                continue
            if flush is not None:
                await flush(item.session.chat_session_id)
            try:
                await backend.end_reply(
                    token, reply.message_id, MessageStatus.INTERRUPTED, GONE_REASON
                )
            except Conflict:
                continue  # ended meanwhile (by the machine or another path)
            ended.append(reply.message_id)
        break
    return ended


# --- as a machine process ----------------------------------------------------


def resolve_root(root: str | Path) -> Path:
    """The machine's root directory, absolute; it must exist and be a directory."""
    path = Path(root).expanduser()
    if not path.exists():
        raise InvalidInput(f"The root directory {path} does not exist. Create it or pick another.")
    if not path.is_dir():
        raise InvalidInput(f"The root directory {path} is a file, not a directory.")
    return path.resolve()


def relative_to_root(root: Path, directory: str | Path) -> str:
    """``directory`` as a path relative to ``root``, refusing anything outside it."""
    candidate = Path(directory).expanduser()
    if not candidate.is_absolute():
        candidate = root / normalize_relative_path(str(directory))
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise PathOutsideRoot(f"{directory} is outside the machine's root directory {root}.")
    return normalize_relative_path(resolved.relative_to(root).as_posix())


async def authenticate_machine(backend: MachineBackend, token: MachineToken) -> Machine:
    """Check the machine token against the backend."""
    return await backend.authenticate(token)


async def register_worker(
    backend: MachineBackend,
    token: MachineToken,
    worker_token: WorkerToken,
    root: Path,
    directory: str | Path,
    name: str | None = None,
) -> Worker:
    """Register a worker for ``directory`` with a worker token; it waits for approval."""
    if worker_token.machine_id != token.machine_id:
        raise InvalidInput("This worker token was issued for another machine.")
    clean_name = validate_name(name, "Worker name") if name else None
    return await backend.register_worker(
        token, worker_token, relative_to_root(root, directory), clean_name
    )


async def update_worker_models(
    backend: MachineBackend, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
) -> Worker:
    """Store the models a worker's agent offers (deduplicated, in order)."""
    return await backend.update_worker_models(token, worker_id, _offered(models, "models"))


async def update_worker_agents(
    backend: MachineBackend, token: MachineToken, worker_id: WorkerId, catalog: AgentCatalog
) -> Worker:
    """Store the agents and slash commands a worker's agent offers (deduplicated, in order)."""
    offered = AgentCatalog(
        tuple(_offered(catalog.agents, "agents and commands")),
        tuple(_offered(catalog.commands, "agents and commands")),
    )
    return await backend.update_worker_agents(token, worker_id, offered)


def _offered(names: Sequence[str], what: str) -> list[str]:
    """``names`` deduplicated in order, if a worker may offer them (how many, how long)."""
    unique = list(dict.fromkeys(names))
    if len(unique) > MAX_MODELS or any(not n or len(n) > MAX_MODEL_LENGTH for n in unique):
        raise InvalidInput(
            f"A worker offers at most {MAX_MODELS} {what} "
            f"with names of 1-{MAX_MODEL_LENGTH} characters."
        )
    return unique

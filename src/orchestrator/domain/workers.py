"""How a worker comes and goes: added by its owner or registered by its machine, approved, online.

Pure transitions over :class:`~orchestrator.domain.model.Worker` records: each
takes the records it reads and returns the ones it changes, so the SQLite
backend and the in-memory fake only load, call and save.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import attrs

from orchestrator.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from orchestrator.domain.ids import MachineId, UserId, WorkerId, WorkerToken
from orchestrator.domain.model import (
    IssuedWorkerToken,
    Worker,
    WorkerStatus,
    ensure_room_for_worker,
    normalize_relative_path,
    transition_worker,
    validate_name,
)
from orchestrator.domain.permissions import PermissionPolicy

PENDING = WorkerStatus.PENDING_AUTHORIZATION
OTHER_MACHINE = "This worker token was issued for another machine."
UNKNOWN_TOKEN = "This worker token is not known. Create a new one in the web UI."  # noqa: S105 - a message, not a password
USED_TOKEN = "This worker token has already been used."  # noqa: S105 - a message, not a password


def worker_place(directory: str, name: str | None) -> tuple[str, str | None]:
    """A new worker's folder (relative to the machine's root) and optional name, checked."""
    return normalize_relative_path(directory), validate_name(name, "Worker name") if name else None


def add_worker(
    worker_id: WorkerId,
    machine_id: MachineId,
    place: tuple[str, str | None],
    policy: PermissionPolicy,
    existing: int,
    by: UserId,
    now: datetime,
) -> Worker:
    """A worker its owner adds: ready at once, approved by the owner (if the machine has room)."""
    ensure_room_for_worker(existing)
    directory, name = place
    return Worker(
        worker_id,
        machine_id,
        directory,
        WorkerStatus.READY,
        now,
        name,
        now,
        by,
        permission_policy=policy,
    )


def register_worker(
    machine_id: MachineId,
    token: WorkerToken,
    issued: IssuedWorkerToken | None,
    place: tuple[str, str | None],
    existing: int,
    now: datetime,
) -> tuple[IssuedWorkerToken, Worker]:
    """A worker a machine registers with a token its owner issued: the token is used up once."""
    if token.machine_id != machine_id:
        raise InvalidInput(OTHER_MACHINE)
    if issued is None or issued.machine_id != machine_id:
        raise NotFound(UNKNOWN_TOKEN)
    if issued.used_at is not None:
        raise Conflict(USED_TOKEN)
    ensure_room_for_worker(existing)
    directory, name = place
    worker = Worker(issued.worker_id, machine_id, directory, PENDING, now, name=name)
    return attrs.evolve(issued, used_at=now), worker


def ensure_pending(worker: Worker, verb: str) -> Worker:
    """Return ``worker`` if it still waits for approval (``verb``: approved, rejected)."""
    if worker.status is not PENDING:
        raise InvalidTransition(f"Only a worker waiting for approval can be {verb}.")
    return worker


def approve_worker(worker: Worker, by: UserId, now: datetime) -> Worker:
    """The owner lets a registered worker run."""
    status = transition_worker(ensure_pending(worker, "approved").status, WorkerStatus.READY)
    return attrs.evolve(worker, status=status, approved_at=now, approved_by=by)


def set_worker_status(
    worker: Worker, target: WorkerStatus, problem: str | None, now: Callable[[], datetime]
) -> Worker:
    """The machine reports its worker online (a heartbeat at ``now()``) or offline (and why)."""
    status = transition_worker(worker.status, target)
    beat = now() if status is WorkerStatus.ONLINE else worker.last_heartbeat
    return attrs.evolve(worker, status=status, last_heartbeat=beat, problem=problem)

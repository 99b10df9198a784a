"""Records of the orchestrator and the rules on their statuses.

Timestamps are timezone-aware UTC ``datetime``s. Directories of workers are
POSIX paths *relative to the machine's root* (``""`` is the root itself), so a
record never reveals or depends on where the root lives on disk.
"""

from __future__ import annotations

import enum
from datetime import datetime
from pathlib import PurePosixPath

import attrs

from orchestrator.domain.errors import Conflict, InvalidInput, InvalidTransition, PathOutsideRoot
from orchestrator.domain.ids import MachineId, UserId, WorkerId
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy

MAX_NAME_LENGTH = 100
MAX_PATH_LENGTH = 1024
MAX_PATH_PART_LENGTH = 255


class MachineStatus(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class WorkerStatus(enum.StrEnum):
    PENDING_AUTHORIZATION = "pending_authorization"
    READY = "ready"
    ONLINE = "online"
    OFFLINE = "offline"


_WORKER_TRANSITIONS: dict[WorkerStatus, frozenset[WorkerStatus]] = {
    WorkerStatus.PENDING_AUTHORIZATION: frozenset({WorkerStatus.READY}),
    WorkerStatus.READY: frozenset({WorkerStatus.ONLINE, WorkerStatus.OFFLINE}),
    WorkerStatus.ONLINE: frozenset({WorkerStatus.OFFLINE}),
    WorkerStatus.OFFLINE: frozenset({WorkerStatus.ONLINE}),
}


def can_transition_worker(current: WorkerStatus, target: WorkerStatus) -> bool:
    """Whether a worker may go from ``current`` to ``target`` (staying put is allowed)."""
    return current == target or target in _WORKER_TRANSITIONS[current]


def transition_worker(current: WorkerStatus, target: WorkerStatus) -> WorkerStatus:
    """Return ``target`` if the change is allowed, else raise :class:`InvalidTransition`."""
    if not can_transition_worker(current, target):
        if current is WorkerStatus.PENDING_AUTHORIZATION:
            raise InvalidTransition("This worker is waiting for approval in the web UI.")
        raise InvalidTransition(f"A worker cannot go from {current} to {target}.")
    return target


@attrs.frozen
class User:
    user_id: UserId
    username: str
    created_at: datetime


@attrs.frozen
class Machine:
    machine_id: MachineId
    user_id: UserId
    name: str
    status: MachineStatus
    created_at: datetime
    last_heartbeat: datetime | None = None
    root_directory: str | None = None


@attrs.frozen
class WorkerCounts:
    """How many workers of a machine are in each status."""

    pending_authorization: int = 0
    ready: int = 0
    online: int = 0
    offline: int = 0


@attrs.frozen
class MachineSummary:
    """A machine as listed to its owner, with its workers counted by status."""

    machine: Machine
    workers: WorkerCounts


@attrs.frozen
class Worker:
    worker_id: WorkerId
    machine_id: MachineId
    directory: str
    status: WorkerStatus
    created_at: datetime
    name: str | None = None
    approved_at: datetime | None = None
    approved_by: UserId | None = None
    last_heartbeat: datetime | None = None
    models: tuple[str, ...] = ()
    #: The agents (modes) a session may use, e.g. build and plan; and the slash commands offered.
    agents: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    #: What its agent may do without asking; reaches opencode when it starts for this worker.
    permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY
    #: Why its machine cannot run it (one sentence for the user), until a heartbeat succeeds.
    problem: str | None = None


@attrs.frozen
class IssuedWorkerToken:
    """A worker token handed out by the owner and not yet used by the machine."""

    worker_id: WorkerId
    machine_id: MachineId
    created_at: datetime
    used_at: datetime | None = None


def validate_name(name: str, what: str = "Name") -> str:
    """Return ``name`` without surrounding spaces, or raise if empty or too long."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidInput(f"{what} must not be empty.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InvalidInput(f"{what} must be at most {MAX_NAME_LENGTH} characters.")
    if any(ord(ch) < 32 for ch in cleaned):
        raise InvalidInput(f"{what} must not contain control characters.")
    return cleaned


def normalize_relative_path(path: str) -> str:
    """Return ``path`` as a clean POSIX path relative to a root (``""`` for the root).

    Refuses absolute paths, ``..``, NUL bytes and over-long names: the lexical
    half of confinement. The machine additionally resolves symlinks on disk.
    """
    if "\x00" in path:
        raise PathOutsideRoot("The path must not contain NUL bytes.")
    if len(path) > MAX_PATH_LENGTH:
        raise PathOutsideRoot(f"The path must be at most {MAX_PATH_LENGTH} characters.")
    if path.startswith(("/", "\\")) or (len(path) > 1 and path[1] == ":"):
        raise PathOutsideRoot("Use a path relative to the machine's root, not an absolute one.")
    parts = [part for part in PurePosixPath(path.replace("\\", "/")).parts if part != "."]
    if ".." in parts:
        raise PathOutsideRoot("The path must not contain '..'.")
    if any(len(part) > MAX_PATH_PART_LENGTH for part in parts):
        raise PathOutsideRoot(
            f"Each folder name must be at most {MAX_PATH_PART_LENGTH} characters."
        )
    clean = "/".join(parts)
    if len(clean) > 1 and clean[1] == ":":  # "./C:/x" must not turn into a drive path
        raise PathOutsideRoot("Use a path relative to the machine's root, not an absolute one.")
    return clean


#: Sign-ins (browsers signed in) kept per account; signing in once more ends the oldest.
MAX_SIGN_INS_PER_USER = 100

#: Workers one machine may have, pending ones included: the same on every backend.
MAX_WORKERS_PER_MACHINE = 100
TOO_MANY_WORKERS = (
    f"A machine can have at most {MAX_WORKERS_PER_MACHINE} workers. Remove one first."
)


def ensure_room_for_worker(existing: int) -> None:
    """Refuse a new worker on a machine that has ``existing`` workers already, if it is full."""
    if existing >= MAX_WORKERS_PER_MACHINE:
        raise Conflict(TOO_MANY_WORKERS)

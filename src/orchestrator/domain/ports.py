"""The boundaries of the orchestrator, as ``typing.Protocol``s.

The backend is seen from two sides and so has two ports:

* :class:`MachineBackend` -- what a machine process may do, every call
  authenticated by its :class:`~orchestrator.domain.ids.MachineToken`;
* :class:`UserBackend` -- what the web server may do on behalf of a signed-in
  user, every call scoped to that user's records (someone else's IDs raise
  :class:`~orchestrator.domain.errors.NotFound`).

:class:`AccountBackend` stores accounts for the web server. Rules that must
hold atomically (ownership, status transitions, single use of worker tokens)
live behind these ports, so the embedded and the Convex backend enforce them
the same way; the contract suite in ``tests/contract`` proves it.

Subscriptions (``watch_*``) are async iterators that yield the current result
at once and again each time it changes, like Convex's ``subscribe``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

from orchestrator.domain.ids import MachineId, MachineToken, UserId, WorkerId, WorkerToken
from orchestrator.domain.model import Machine, MachineSummary, User, Worker


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    def new_id(self, kind: str) -> str:
        """A fresh unique ID for a record of ``kind`` (a key of ``ids.PREFIXES``)."""
        ...

    def new_secret(self) -> str:
        """A fresh secret with at least 256 bits of entropy."""
        ...


class SecretHasher(Protocol):
    def hash(self, secret: str) -> str:
        """A slow, salted hash of ``secret`` fit to store at rest."""
        ...

    def verify(self, hashed: str, secret: str) -> bool:
        """Whether ``secret`` matches ``hashed``, compared in constant time."""
        ...


class MachineBackend(Protocol):
    """The backend as a machine process sees it."""

    async def authenticate(self, token: MachineToken) -> Machine:
        """The machine the token belongs to; raises AuthenticationFailed if wrong."""
        ...

    async def go_online(self, token: MachineToken, root_directory: str) -> Machine:
        """Mark the machine online and record its root directory and heartbeat."""
        ...

    async def heartbeat(self, token: MachineToken) -> Machine:
        """Record that the machine is alive (and online)."""
        ...

    async def go_offline(self, token: MachineToken) -> None:
        """Mark the machine and all its workers offline."""
        ...

    async def list_own_workers(self, token: MachineToken) -> list[Worker]:
        """Every worker of this machine, pending ones included."""
        ...

    async def register_worker(
        self, token: MachineToken, worker_token: WorkerToken, directory: str, name: str | None
    ) -> Worker:
        """Create a worker from an issued worker token; it waits for approval."""
        ...

    async def worker_heartbeat(self, token: MachineToken, worker_id: WorkerId) -> Worker:
        """Mark an approved worker online and record its heartbeat."""
        ...

    async def worker_offline(self, token: MachineToken, worker_id: WorkerId) -> Worker:
        """Mark an approved worker offline."""
        ...

    async def update_worker_models(
        self, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
    ) -> Worker:
        """Replace the list of models the worker's agent offers."""
        ...

    def watch_own_workers(self, token: MachineToken) -> AsyncIterator[list[Worker]]:
        """The machine's workers, now and after every change."""
        ...


class UserBackend(Protocol):
    """The backend as the web server sees it on behalf of a signed-in user."""

    async def create_machine(self, user: UserId, name: str) -> tuple[Machine, MachineToken]:
        """Create an offline machine; the token (with its secret) is returned only here."""
        ...

    async def list_machines(self, user: UserId) -> list[MachineSummary]:
        """The user's machines, oldest first, with worker counts by status."""
        ...

    async def get_machine(self, user: UserId, machine_id: MachineId) -> Machine:
        """One of the user's machines."""
        ...

    async def delete_machine(self, user: UserId, machine_id: MachineId) -> None:
        """Delete a machine and its workers; its token stops working at once."""
        ...

    async def add_worker(
        self, user: UserId, machine_id: MachineId, directory: str, name: str | None
    ) -> Worker:
        """Add an approved (``ready``) worker on a directory relative to the machine's root."""
        ...

    async def issue_worker_token(self, user: UserId, machine_id: MachineId) -> WorkerToken:
        """A single-use token the machine can register a worker with."""
        ...

    async def approve_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        """Approve a pending worker; it becomes ``ready``."""
        ...

    async def reject_worker(self, user: UserId, worker_id: WorkerId) -> None:
        """Refuse a pending worker; it is deleted and its token stays used."""
        ...

    async def remove_worker(self, user: UserId, worker_id: WorkerId) -> None:
        """Delete a worker in any status."""
        ...

    async def list_workers(self, user: UserId, machine_id: MachineId) -> list[Worker]:
        """The workers of one of the user's machines, oldest first."""
        ...

    async def list_pending_workers(self, user: UserId) -> list[Worker]:
        """Workers waiting for approval across all the user's machines."""
        ...

    def watch_machines(self, user: UserId) -> AsyncIterator[list[MachineSummary]]:
        """The user's machines, now and after every change."""
        ...

    def watch_workers(self, user: UserId, machine_id: MachineId) -> AsyncIterator[list[Worker]]:
        """The workers of one machine, now and after every change."""
        ...


class AccountBackend(Protocol):
    """Accounts of the web app; passwords arrive already hashed."""

    async def create_user(self, username: str, password_hash: str) -> User:
        """Create an account; raises Conflict if the username is taken."""
        ...

    async def find_user(self, username: str) -> tuple[User, str] | None:
        """The account and its password hash, or None if there is no such user."""
        ...

    async def get_user(self, user_id: UserId) -> User:
        """An account by ID; raises NotFound."""
        ...

    async def count_users(self) -> int:
        """How many accounts exist (zero means first run)."""
        ...

    async def list_users(self) -> list[User]:
        """Every account, oldest first (the first is the one the setup link created)."""
        ...


class MaintenanceBackend(Protocol):
    """Housekeeping only the server itself performs."""

    async def mark_stale_machines_offline(self, last_seen_before: datetime) -> list[MachineId]:
        """Set online machines with no heartbeat since the cutoff (and their workers) offline."""
        ...


class ServerBackend(UserBackend, AccountBackend, MaintenanceBackend, Protocol):
    """Everything the web server needs from a backend."""


class Backend(ServerBackend, MachineBackend, Protocol):
    """A complete backend: the embedded one and the Convex one implement this."""

    async def close(self) -> None:
        """Release connections and stop background tasks."""
        ...

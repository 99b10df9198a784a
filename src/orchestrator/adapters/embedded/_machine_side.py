"""The machine's side of the embedded backend: every call authenticated by its token.

A successful argon2 check is remembered as ``machine_id -> sha256(secret)`` so
heartbeats stay cheap; the machine row is still read on every call, so a
deleted machine is refused at once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import aiosqlite
import anyio

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._command_rows import recover_commands
from orchestrator.adapters.embedded._store import Store, Tx
from orchestrator.domain import lease as lease_rules
from orchestrator.domain import workers
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.errors import AuthenticationFailed, NotFound
from orchestrator.domain.ids import MachineId, MachineToken, UserId, WorkerId, WorkerToken
from orchestrator.domain.lease import Lease
from orchestrator.domain.model import (
    IssuedWorkerToken,
    Machine,
    Worker,
    WorkerStatus,
)
from orchestrator.domain.ports import Clock, IdGenerator, SecretHasher

#: The one message for an unknown machine and a wrong secret alike.
INVALID_TOKEN = "Invalid token"  # noqa: S105 - a message, not a password
NO_MACHINE = "No such machine."
NO_WORKER = "No such worker."
#: A worker of one of the user's machines (parameters: worker ID, user ID).
OWNED_WORKER = """
    SELECT w.* FROM workers AS w JOIN machines AS m USING (machine_id)
    WHERE w.worker_id = ? AND m.user_id = ?
"""
PENDING = WorkerStatus.PENDING_AUTHORIZATION


def _issued(row: aiosqlite.Row) -> IssuedWorkerToken:
    used_at = row["used_at"]
    return IssuedWorkerToken(
        WorkerId(row["worker_id"]),
        MachineId(row["machine_id"]),
        rows.from_ms(row["created_at"]),
        None if used_at is None else rows.from_ms(used_at),
    )


def topics(user_id: str, machine_id: str) -> tuple[tuple[str, ...], ...]:
    """The change-feed topics a write to this machine or its workers touches."""
    return ("user", user_id), ("machine", machine_id), MACHINES


#: Topic of every machine at once (the notifier sees machines go offline).
MACHINES = ("machines",)


async def count_workers(tx: Tx, machine_id: str) -> int:
    """How many workers the machine has (for the limit per machine)."""
    row = await tx.one("SELECT count(*) FROM workers WHERE machine_id = ?", machine_id)
    return 0 if row is None else int(row[0])


async def save_worker(tx: Tx, worker: Worker) -> None:
    """Write a worker record (new or changed) back to its row."""
    values = {
        "worker_id": worker.worker_id,
        "machine_id": worker.machine_id,
        "name": worker.name,
        "directory": worker.directory,
        "status": worker.status.value,
        "created_at": rows.to_ms(worker.created_at),
        "approved_at": _opt_ms(worker.approved_at),
        "approved_by": worker.approved_by,
        "last_heartbeat": _opt_ms(worker.last_heartbeat),
        "models": rows.models_json(worker.models),
        "agents": rows.models_json(worker.agents),
        "commands": rows.models_json(worker.commands),
        "permission_policy": rows.policy_json(worker.permission_policy),
        "problem": worker.problem,
    }
    await tx.upsert("workers", values, key=("worker_id",), keep=("machine_id", "created_at"))


def _opt_ms(when: datetime | None) -> int | None:
    return None if when is None else rows.to_ms(when)


class MachineSide:
    """The :class:`~orchestrator.domain.ports.MachineBackend` half, and shared helpers."""

    def __init__(
        self, store: Store, *, clock: Clock, ids: IdGenerator, hasher: SecretHasher
    ) -> None:
        self._store = store
        self._clock = clock
        self._ids = ids
        self._hasher = hasher
        # machine_id -> (stored hash, sha256 of a secret that verified against it)
        self._verified: dict[str, tuple[str, bytes]] = {}

    async def close(self) -> None:
        await self._store.close()

    def _now(self) -> int:
        return rows.to_ms(self._clock.now())

    async def _owned_machine(self, tx: Tx, user: UserId, machine_id: MachineId) -> Machine:
        """The user's machine (NotFound if it is not theirs)."""
        row = await tx.found(
            NO_MACHINE,
            "SELECT * FROM machines WHERE machine_id = ? AND user_id = ?",
            machine_id,
            user,
        )
        return rows.machine(row)

    def _known_secret(self, token: MachineToken) -> str | None:
        """The stored hash ``token``'s secret verified against before, if it did (no argon2).

        The caller still checks it against the machine's row, read in its transaction.
        """
        cached = self._verified.get(token.machine_id)
        digest = hashlib.sha256(token.secret.encode()).digest()
        return cached[0] if cached and hmac.compare_digest(cached[1], digest) else None

    async def _verify_secret(self, token: MachineToken) -> str:
        async with self._store.transaction() as tx:
            row = await tx.one(
                "SELECT secret_hash FROM machines WHERE machine_id = ?", token.machine_id
            )
        if row is None:
            raise AuthenticationFailed(INVALID_TOKEN)
        stored: str = row["secret_hash"]
        digest = hashlib.sha256(token.secret.encode()).digest()
        # argon2 takes ~0.1 s: keep it off the event loop, and remember success.
        if not await anyio.to_thread.run_sync(self._hasher.verify, stored, token.secret):
            raise AuthenticationFailed(INVALID_TOKEN)
        self._verified[token.machine_id] = (stored, digest)
        return stored

    @asynccontextmanager
    async def _as_machine(
        self, token: MachineToken, *, write: bool = True
    ) -> AsyncIterator[tuple[Tx, aiosqlite.Row]]:
        # A secret verified before needs no read of its own: the row read below checks it
        # (a machine deleted, or made anew under its ID, no longer has that hash).
        stored = self._known_secret(token) or await self._verify_secret(token)
        async with self._store.transaction(write=write) as tx:
            row = await tx.one("SELECT * FROM machines WHERE machine_id = ?", token.machine_id)
            if row is None or row["secret_hash"] != stored:
                raise AuthenticationFailed(INVALID_TOKEN)
            yield tx, row

    async def _own_worker(self, tx: Tx, machine_id: str, worker_id: WorkerId) -> aiosqlite.Row:
        row = await tx.one(
            "SELECT * FROM workers WHERE worker_id = ? AND machine_id = ?", worker_id, machine_id
        )
        if row is None:
            raise NotFound(NO_WORKER)
        return row

    async def _machine_row(self, tx: Tx, machine_id: str) -> Machine:
        row = await tx.one("SELECT * FROM machines WHERE machine_id = ?", machine_id)
        assert row is not None
        return rows.machine(row)

    async def _worker_row(self, tx: Tx, worker_id: str) -> Worker:
        row = await tx.one("SELECT * FROM workers WHERE worker_id = ?", worker_id)
        assert row is not None
        return rows.worker(row)

    async def _workers_of(self, tx: Tx, machine_id: str) -> list[Worker]:
        found = await tx.all(
            "SELECT * FROM workers WHERE machine_id = ? ORDER BY created_at, rowid", machine_id
        )
        return [rows.worker(row) for row in found]

    async def authenticate(self, token: MachineToken) -> Machine:
        async with self._as_machine(token, write=False) as (_, row):
            return rows.machine(row)

    async def go_online(
        self, token: MachineToken, root_directory: str, lease: Lease | None = None
    ) -> Machine:
        async with self._as_machine(token) as (tx, row):
            if lease is not None:
                until = row["lease_until"]
                expires = rows.from_ms(until) if until is not None else None
                now = self._now()
                lease_rules.check_claim(
                    row["instance_id"], expires, rows.from_ms(now), lease.instance
                )
                await self._hold(tx, token.machine_id, lease, now)
            await tx.run(
                "UPDATE machines SET status = 'online', root_directory = ?, last_heartbeat = ? "
                "WHERE machine_id = ?",
                root_directory,
                self._now(),
                token.machine_id,
            )
            # A (re)started process: what a dead one left running is not running any more.
            await recover_commands(tx, token.machine_id, rows.from_ms(self._now()))
            tx.touch(*topics(row["user_id"], token.machine_id))
            return await self._machine_row(tx, token.machine_id)

    async def _hold(self, tx: Tx, machine_id: str, lease: Lease, now: int) -> None:
        until = now + int(lease.duration.total_seconds() * 1000)
        await tx.run(
            "UPDATE machines SET instance_id = ?, lease_until = ? WHERE machine_id = ?",
            lease.instance,
            until,
            machine_id,
        )

    async def heartbeat(self, token: MachineToken, lease: Lease | None = None) -> Machine:
        async with self._as_machine(token) as (tx, row):
            if lease is not None:
                lease_rules.check_renewal(row["instance_id"], lease.instance)
                await self._hold(tx, token.machine_id, lease, self._now())
            await tx.run(
                "UPDATE machines SET status = 'online', last_heartbeat = ? WHERE machine_id = ?",
                self._now(),
                token.machine_id,
            )
            tx.touch(*topics(row["user_id"], token.machine_id))
            return await self._machine_row(tx, token.machine_id)

    async def go_offline(self, token: MachineToken, lease: Lease | None = None) -> None:
        async with self._as_machine(token) as (tx, row):
            if not lease_rules.may_release(row["instance_id"], lease.instance if lease else None):
                return
            await tx.run(
                "UPDATE machines SET instance_id = NULL, lease_until = NULL WHERE machine_id = ?",
                token.machine_id,
            )
            await self._set_offline(tx, token.machine_id)
            tx.touch(*topics(row["user_id"], token.machine_id))

    async def _set_offline(self, tx: Tx, machine_id: str) -> None:
        await tx.run("UPDATE machines SET status = 'offline' WHERE machine_id = ?", machine_id)
        await tx.run(
            "UPDATE workers SET status = 'offline' WHERE machine_id = ? AND status = 'online'",
            machine_id,
        )

    async def list_own_workers(self, token: MachineToken) -> list[Worker]:
        async with self._as_machine(token, write=False) as (tx, _):
            return await self._workers_of(tx, token.machine_id)

    async def register_worker(
        self, token: MachineToken, worker_token: WorkerToken, directory: str, name: str | None
    ) -> Worker:
        place = workers.worker_place(directory, name)
        async with self._as_machine(token) as (tx, row):
            found = await tx.one(
                "SELECT * FROM worker_tokens WHERE worker_id = ? AND machine_id = ?",
                worker_token.worker_id,
                token.machine_id,
            )
            issued, worker = workers.register_worker(
                token.machine_id,
                worker_token,
                None if found is None else _issued(found),
                place,
                await count_workers(tx, token.machine_id),
                rows.from_ms(self._now()),
            )
            await tx.run(
                "UPDATE worker_tokens SET used_at = ? WHERE worker_id = ?",
                _opt_ms(issued.used_at),
                issued.worker_id,
            )
            await save_worker(tx, worker)
            tx.touch(*topics(row["user_id"], token.machine_id))
            return await self._worker_row(tx, worker_token.worker_id)

    async def _set_worker_status(
        self,
        token: MachineToken,
        worker_id: WorkerId,
        target: WorkerStatus,
        problem: str | None = None,
    ) -> Worker:
        async with self._as_machine(token) as (tx, row):
            worker = rows.worker(await self._own_worker(tx, token.machine_id, worker_id))
            changed = workers.set_worker_status(
                worker, target, problem, lambda: rows.from_ms(self._now())
            )
            await save_worker(tx, changed)
            tx.touch(*topics(row["user_id"], token.machine_id))
            return await self._worker_row(tx, worker_id)

    async def worker_heartbeat(self, token: MachineToken, worker_id: WorkerId) -> Worker:
        return await self._set_worker_status(token, worker_id, WorkerStatus.ONLINE)

    async def worker_offline(
        self, token: MachineToken, worker_id: WorkerId, problem: str | None = None
    ) -> Worker:
        return await self._set_worker_status(token, worker_id, WorkerStatus.OFFLINE, problem)

    async def update_worker_models(
        self, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
    ) -> Worker:
        async with self._as_machine(token) as (tx, row):
            await self._own_worker(tx, token.machine_id, worker_id)
            await tx.run(
                "UPDATE workers SET models = ? WHERE worker_id = ?",
                rows.models_json(list(models)),
                worker_id,
            )
            tx.touch(*topics(row["user_id"], token.machine_id))
            return await self._worker_row(tx, worker_id)

    async def update_worker_agents(
        self, token: MachineToken, worker_id: WorkerId, catalog: AgentCatalog
    ) -> Worker:
        async with self._as_machine(token) as (tx, row):
            await self._own_worker(tx, token.machine_id, worker_id)
            await tx.run(
                "UPDATE workers SET agents = ?, commands = ? WHERE worker_id = ?",
                rows.models_json(list(catalog.agents)),
                rows.models_json(list(catalog.commands)),
                worker_id,
            )
            tx.touch(*topics(row["user_id"], token.machine_id))
            return await self._worker_row(tx, worker_id)

    def watch_own_workers(self, token: MachineToken) -> AsyncGenerator[list[Worker], None]:
        return self._store.feed.watch(
            [("machine", token.machine_id)], lambda: self.list_own_workers(token)
        )

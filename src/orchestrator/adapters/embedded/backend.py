"""The embedded backend: the whole ``Backend`` port on one SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator
from datetime import datetime
from pathlib import Path

import anyio

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._api_tokens import ApiTokenSide
from orchestrator.adapters.embedded._chat import ChatUserSide
from orchestrator.adapters.embedded._chat_machine import ChatMachineSide
from orchestrator.adapters.embedded._commands import CommandSide
from orchestrator.adapters.embedded._jobs import JobSide, pause_jobs_of_workers
from orchestrator.adapters.embedded._live import LiveSide
from orchestrator.adapters.embedded._machine_side import (
    NO_WORKER,
    OWNED_WORKER,
    MachineSide,
    count_workers,
    save_worker,
    topics,
)
from orchestrator.adapters.embedded._paging import keyset_start
from orchestrator.adapters.embedded._parts import PartSide
from orchestrator.adapters.embedded._push import PushSide
from orchestrator.adapters.embedded._questions import QuestionSide
from orchestrator.adapters.embedded._schema import connect
from orchestrator.adapters.embedded._store import Store, Tx
from orchestrator.adapters.embedded._transfer import TransferSide
from orchestrator.adapters.port_methods import AddsWorkers, Place
from orchestrator.domain import workers
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import MachineId, MachineToken, UserId, WorkerId, WorkerToken
from orchestrator.domain.model import (
    MAX_SIGN_INS_PER_USER,
    Machine,
    MachineSummary,
    User,
    Worker,
    validate_name,
)
from orchestrator.domain.paging import (
    MACHINE_PAGE,
    MACHINES,
    Page,
    cut_page,
    decode_cursor,
    make_page,
    page_limit,
)
from orchestrator.domain.permissions import PermissionPolicy
from orchestrator.domain.ports import Clock, IdGenerator, SecretHasher

NO_USER = "No such user."

# Each machine with its workers counted by status.
_SUMMARY_COLUMNS = """
    SELECT m.*,
        count(*) FILTER (WHERE w.status = 'pending_authorization') AS pending_authorization,
        count(*) FILTER (WHERE w.status = 'ready') AS ready,
        count(*) FILTER (WHERE w.status = 'online') AS online,
        count(*) FILTER (WHERE w.status = 'offline') AS offline
    FROM machines AS m LEFT JOIN workers AS w ON w.machine_id = m.machine_id
"""
_SUMMARIES = (
    _SUMMARY_COLUMNS + " WHERE m.user_id = ? GROUP BY m.machine_id ORDER BY m.created_at, m.rowid"
)
_SUMMARIES_PAGE = (
    _SUMMARY_COLUMNS + " WHERE m.user_id = ? AND (m.created_at, m.rowid) > (?, ?)"
    " GROUP BY m.machine_id ORDER BY m.created_at, m.rowid LIMIT ?"
)


async def open_backend(
    path: Path | str,
    *,
    clock: Clock,
    ids: IdGenerator,
    hasher: SecretHasher,
    poll_interval: float = 0.5,
) -> SQLiteBackend:
    """Open (or create) the database at ``path`` (``":memory:"`` too); close it when done."""
    store = Store(await connect(path), poll_interval=poll_interval)
    store.start()
    return SQLiteBackend(store, clock=clock, ids=ids, hasher=hasher)


class SQLiteBackend(
    AddsWorkers,
    LiveSide,
    PartSide,
    QuestionSide,
    ChatUserSide,
    ChatMachineSide,
    CommandSide,
    JobSide,
    PushSide,
    ApiTokenSide,
    MachineSide,
    TransferSide,
):
    """Implements :class:`orchestrator.domain.ports.Backend`; build it with :func:`open_backend`."""

    # --- user side ----------------------------------------------------------------

    async def _owned_worker(self, tx: Tx, user: UserId, worker_id: WorkerId) -> Worker:
        row = await tx.found(NO_WORKER, OWNED_WORKER, worker_id, user)
        tx.touch(*topics(user, row["machine_id"]))
        return rows.worker(row)

    async def create_machine(self, user: UserId, name: str) -> tuple[Machine, MachineToken]:
        name = validate_name(name, "Machine name")
        token = MachineToken(MachineId(self._ids.new_id("machine")), self._ids.new_secret())
        hashed = await anyio.to_thread.run_sync(self._hasher.hash, token.secret)
        async with self._store.transaction(write=True) as tx:
            if await tx.one("SELECT 1 FROM users WHERE user_id = ?", user) is None:
                raise NotFound(NO_USER)
            await tx.run(
                "INSERT INTO machines (machine_id, user_id, name, secret_hash, status, created_at)"
                " VALUES (?, ?, ?, ?, 'offline', ?)",
                token.machine_id,
                user,
                name,
                hashed,
                self._now(),
            )
            tx.touch(*topics(user, token.machine_id))
            return await self._machine_row(tx, token.machine_id), token

    async def list_machines(self, user: UserId) -> list[MachineSummary]:
        async with self._store.transaction() as tx:
            return [rows.machine_summary(row) for row in await tx.all(_SUMMARIES, user)]

    async def list_machines_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[MachineSummary]:
        count = page_limit(limit, MACHINE_PAGE, MACHINE_PAGE)
        after = decode_cursor(cursor, MACHINES, user)
        async with self._store.transaction() as tx:
            start = await keyset_start(tx, "machines", after, user)
            found = await tx.all(_SUMMARIES_PAGE, user, *start, count + 1)
        summaries = [rows.machine_summary(row) for row in found]
        items, more = cut_page(summaries, count, lambda _: 1)
        return make_page(items, more, MACHINES, user, lambda s: s.machine.machine_id)

    async def get_machine(self, user: UserId, machine_id: MachineId) -> Machine:
        async with self._store.transaction() as tx:
            return await self._owned_machine(tx, user, machine_id)

    async def delete_machine(self, user: UserId, machine_id: MachineId) -> None:
        async with self._store.transaction(write=True) as tx:
            await self._owned_machine(tx, user, machine_id)
            found = await tx.all("SELECT worker_id FROM workers WHERE machine_id = ?", machine_id)
            await pause_jobs_of_workers(tx, [row["worker_id"] for row in found])
            await tx.run("DELETE FROM machines WHERE machine_id = ?", machine_id)
            tx.touch(*topics(user, machine_id))
        self._verified.pop(machine_id, None)
        # The cascade removed chat sessions too: wake whoever watched them.
        await self._store.feed.publish_everything()

    async def _add_worker(
        self, user: UserId, machine_id: MachineId, place: Place, policy: PermissionPolicy
    ) -> Worker:
        worker_id = WorkerId(self._ids.new_id("worker"))
        async with self._store.transaction(write=True) as tx:
            await self._owned_machine(tx, user, machine_id)
            existing = await count_workers(tx, machine_id)
            now = rows.from_ms(self._now())
            worker = workers.add_worker(worker_id, machine_id, place, policy, existing, user, now)
            await save_worker(tx, worker)
            tx.touch(*topics(user, machine_id))
            return await self._worker_row(tx, worker_id)

    async def set_worker_permission_policy(
        self, user: UserId, worker_id: WorkerId, permission_policy: PermissionPolicy
    ) -> Worker:
        async with self._store.transaction(write=True) as tx:
            worker = await self._owned_worker(tx, user, worker_id)
            await tx.run(
                "UPDATE workers SET permission_policy = ? WHERE worker_id = ?",
                rows.policy_json(permission_policy),
                worker_id,
            )
            tx.touch(*topics(user, worker.machine_id))
            return await self._worker_row(tx, worker_id)

    async def issue_worker_token(self, user: UserId, machine_id: MachineId) -> WorkerToken:
        worker_id = WorkerId(self._ids.new_id("worker"))
        async with self._store.transaction(write=True) as tx:
            await self._owned_machine(tx, user, machine_id)
            await tx.run(
                "INSERT INTO worker_tokens (worker_id, machine_id, created_at) VALUES (?, ?, ?)",
                worker_id,
                machine_id,
                self._now(),
            )
        return WorkerToken(machine_id, worker_id)

    async def approve_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        async with self._store.transaction(write=True) as tx:
            worker = await self._owned_worker(tx, user, worker_id)
            now = rows.from_ms(self._now())
            await save_worker(tx, workers.approve_worker(worker, user, now))
            return await self._worker_row(tx, worker_id)

    async def reject_worker(self, user: UserId, worker_id: WorkerId) -> None:
        async with self._store.transaction(write=True) as tx:
            workers.ensure_pending(await self._owned_worker(tx, user, worker_id), "rejected")
            await tx.run("DELETE FROM workers WHERE worker_id = ?", worker_id)

    async def remove_worker(self, user: UserId, worker_id: WorkerId) -> None:
        async with self._store.transaction(write=True) as tx:
            await self._owned_worker(tx, user, worker_id)
            await pause_jobs_of_workers(tx, [worker_id])
            await tx.run("DELETE FROM workers WHERE worker_id = ?", worker_id)
        await self._store.feed.publish_everything()  # its chat sessions went with it

    async def get_worker(self, user: UserId, worker_id: WorkerId) -> Worker:
        async with self._store.transaction() as tx:
            return await self._owned_worker(tx, user, worker_id)

    async def list_workers(self, user: UserId, machine_id: MachineId) -> list[Worker]:
        async with self._store.transaction() as tx:
            await self._owned_machine(tx, user, machine_id)
            return await self._workers_of(tx, machine_id)

    async def list_pending_workers(self, user: UserId) -> list[Worker]:
        async with self._store.transaction() as tx:
            found = await tx.all(
                "SELECT w.* FROM workers AS w JOIN machines AS m USING (machine_id)"
                " WHERE m.user_id = ? AND w.status = 'pending_authorization'"
                " ORDER BY w.created_at, w.rowid",
                user,
            )
            return [rows.worker(row) for row in found]

    def watch_machines(self, user: UserId) -> AsyncGenerator[list[MachineSummary], None]:
        return self._store.feed.watch([("user", user)], lambda: self.list_machines(user))

    def watch_workers(
        self, user: UserId, machine_id: MachineId
    ) -> AsyncGenerator[list[Worker], None]:
        return self._store.feed.watch(
            [("machine", machine_id)], lambda: self.list_workers(user, machine_id)
        )

    # --- accounts -------------------------------------------------------------------

    async def create_user(self, username: str, password_hash: str) -> User:
        user_id = UserId(self._ids.new_id("user"))
        try:
            async with self._store.transaction(write=True) as tx:
                if await tx.one("SELECT 1 FROM users WHERE username = ?", username):
                    raise Conflict("That username is taken. Choose another one.")
                await tx.run(
                    "INSERT INTO users (user_id, username, password_hash, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    user_id,
                    username,
                    password_hash,
                    self._now(),
                )
                return await self._user(tx, user_id)
        except sqlite3.IntegrityError as exc:
            raise Conflict("That username is taken. Choose another one.") from exc

    async def _user(self, tx: Tx, user_id: str) -> User:
        row = await tx.found(NO_USER, "SELECT * FROM users WHERE user_id = ?", user_id)
        return rows.user(row)

    async def find_user(self, username: str) -> tuple[User, str] | None:
        async with self._store.transaction() as tx:
            row = await tx.one("SELECT * FROM users WHERE username = ?", username)
        return None if row is None else (rows.user(row), row["password_hash"])

    async def get_user(self, user_id: UserId) -> User:
        async with self._store.transaction() as tx:
            return await self._user(tx, user_id)

    async def list_users(self) -> list[User]:
        async with self._store.transaction() as tx:
            found = await tx.all("SELECT * FROM users ORDER BY created_at, rowid")
        return [rows.user(row) for row in found]

    async def count_users(self) -> int:
        async with self._store.transaction() as tx:
            row = await tx.one("SELECT count(*) FROM users")
        return int(row[0]) if row else 0

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        async with self._store.transaction(write=True) as tx:
            await self._user(tx, user_id)
            await tx.run(
                "UPDATE users SET password_hash = ? WHERE user_id = ?", password_hash, user_id
            )

    async def add_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        async with self._store.transaction(write=True) as tx:
            await self._user(tx, user_id)
            await tx.run(
                "INSERT INTO sign_ins (sign_in_id, user_id, created_at) VALUES (?, ?, ?)",
                sign_in_id,
                user_id,
                self._now(),
            )
            await tx.run(
                "DELETE FROM sign_ins WHERE user_id = ? AND sign_in_id NOT IN"
                " (SELECT sign_in_id FROM sign_ins WHERE user_id = ?"
                "  ORDER BY created_at DESC, rowid DESC LIMIT ?)",
                user_id,
                user_id,
                MAX_SIGN_INS_PER_USER,
            )

    async def has_sign_in(self, user_id: UserId, sign_in_id: str) -> bool:
        async with self._store.transaction() as tx:
            row = await tx.one(
                "SELECT 1 FROM sign_ins WHERE sign_in_id = ? AND user_id = ?", sign_in_id, user_id
            )
        return row is not None

    async def end_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        async with self._store.transaction(write=True) as tx:
            await tx.run(
                "DELETE FROM sign_ins WHERE sign_in_id = ? AND user_id = ?", sign_in_id, user_id
            )

    async def end_other_sign_ins(self, user_id: UserId, keep: str | None) -> int:
        async with self._store.transaction(write=True) as tx:
            row = await tx.one(
                "SELECT count(*) FROM sign_ins WHERE user_id = ? AND sign_in_id IS NOT ?",
                user_id,
                keep,
            )
            await tx.run(
                "DELETE FROM sign_ins WHERE user_id = ? AND sign_in_id IS NOT ?", user_id, keep
            )
        return int(row[0]) if row else 0

    # --- maintenance ------------------------------------------------------------------

    async def mark_stale_machines_offline(self, last_seen_before: datetime) -> list[MachineId]:
        async with self._store.transaction(write=True) as tx:
            stale = await tx.all(
                "SELECT machine_id, user_id FROM machines WHERE status = 'online'"
                " AND (last_heartbeat IS NULL OR last_heartbeat < ?) ORDER BY created_at, rowid",
                rows.to_ms(last_seen_before),
            )
            for row in stale:
                await self._end_replies_of_machine(tx, row["machine_id"])
                await self._set_offline(tx, row["machine_id"])
                tx.touch(*topics(row["user_id"], row["machine_id"]))
            return [MachineId(row["machine_id"]) for row in stale]

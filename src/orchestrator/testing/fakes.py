"""Hand-written fakes of the orchestrator's ports, with state you can inspect.

For tests only: :class:`PlainHasher` stores secrets in the clear. The
:class:`InMemoryBackend` enforces the same rules as the real backends (the
contract suite in ``tests/contract`` runs against it too).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import attrs

from orchestrator.adapters.port_methods import AddsWorkers, Place
from orchestrator.domain import lease as lease_rules
from orchestrator.domain import model, workers
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
)
from orchestrator.domain.ids import (
    PREFIXES,
    MachineId,
    MachineToken,
    UserId,
    WorkerId,
    WorkerToken,
)
from orchestrator.domain.lease import Lease
from orchestrator.domain.paging import (
    MACHINE_PAGE,
    MACHINES,
    Page,
    decode_cursor,
    make_page,
    page_from_list,
    page_limit,
)
from orchestrator.domain.permissions import PermissionPolicy
from orchestrator.domain.ports import Clock, IdGenerator, SecretHasher
from orchestrator.testing._api_tokens_fake import ApiTokenFake
from orchestrator.testing._chat_fake import ChatUserFake
from orchestrator.testing._chat_fake_machine import ChatMachineFake
from orchestrator.testing._commands_fake import CommandFake
from orchestrator.testing._jobs_fake import JobFake
from orchestrator.testing._parts_fake import PartsFake
from orchestrator.testing._push_fake import PushFake
from orchestrator.testing._questions_fake import QuestionFake

T = TypeVar("T")

PENDING = model.WorkerStatus.PENDING_AUTHORIZATION


def _aware(_: object, __: object, value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError("FakeClock needs a timezone-aware datetime.")


@attrs.define
class FakeClock:
    """A clock that moves only when told to (or by ``tick`` on every reading)."""

    current: datetime = attrs.field(default=datetime(2025, 1, 1, tzinfo=UTC), validator=_aware)
    tick: timedelta = timedelta(0)

    def now(self) -> datetime:
        value = self.current
        self.current += self.tick
        return value

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by a ``timedelta`` or a number of seconds; returns the new time."""
        self.current += by if isinstance(by, timedelta) else timedelta(seconds=by)
        return self.current

    def set(self, when: datetime) -> None:
        _aware(None, None, when)
        self.current = when


@attrs.define
class SequentialIds:
    """Deterministic IDs (``mch_000001``, ``wrk_000002``, ...) and secrets (``sec_...``)."""

    issued: int = 0
    secrets: int = 0

    def new_id(self, kind: str) -> str:
        self.issued += 1
        return f"{PREFIXES[kind]}_{self.issued:06d}"

    def new_secret(self) -> str:
        self.secrets += 1
        return f"{PREFIXES['secret']}_test-secret-{self.secrets:06d}"


@attrs.define
class PlainHasher:
    """A fast fake hasher that counts its calls. Never use it in production."""

    hashes: int = 0
    verifies: int = 0

    def hash(self, secret: str) -> str:
        self.hashes += 1
        return "plain$" + secret

    def verify(self, hashed: str, secret: str) -> bool:
        self.verifies += 1
        return hmac.compare_digest(hashed.encode(), ("plain$" + secret).encode())


def _ms(when: datetime) -> datetime:
    # The real backends keep milliseconds; so does the fake.
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def _summary_id(summary: model.MachineSummary) -> str:
    return summary.machine.machine_id


def _oldest_first(records: list[T], key: Callable[[T], datetime]) -> list[T]:
    return sorted(records, key=key)  # stable: ties keep insertion order


@attrs.define(eq=False)
class InMemoryBackend(
    AddsWorkers,
    PartsFake,
    ChatUserFake,
    ChatMachineFake,
    QuestionFake,
    CommandFake,
    JobFake,
    PushFake,
    ApiTokenFake,
):
    """The whole ``Backend`` port in dicts; every write wakes the ``watch_*`` subscribers."""

    clock: Clock = attrs.field(factory=FakeClock)
    ids: IdGenerator = attrs.field(factory=SequentialIds)
    hasher: SecretHasher = attrs.field(factory=PlainHasher)
    version: int = attrs.field(default=0, init=False)
    closed: bool = attrs.field(default=False, init=False)
    _changed: asyncio.Condition = attrs.field(factory=asyncio.Condition, init=False)

    def _now(self) -> datetime:
        return _ms(self.clock.now())

    async def _commit(self) -> None:
        self.version += 1
        async with self._changed:
            self._changed.notify_all()

    def _moved(self, seen: int) -> bool:
        return self.closed or self.version != seen

    async def _wakeups(self) -> AsyncGenerator[None, None]:
        # Yield now and after every commit; the consumer reads between two yields.
        seen = self.version
        while not self.closed:
            yield
            async with self._changed:
                await self._changed.wait_for(partial(self._moved, seen))
            seen = self.version

    async def _watch(self, query: Callable[[], Awaitable[T]]) -> AsyncGenerator[T, None]:
        first, last = True, None
        async with aclosing(self._wakeups()) as wakeups:
            async for _ in wakeups:
                current = await query()
                if first or current != last:
                    first, last = False, current
                    yield current

    async def close(self) -> None:
        self.closed = True
        await self._commit()

    # --- machine side -----------------------------------------------------------

    def _auth(self, token: MachineToken) -> model.Machine:
        hashed = self.secret_hashes.get(token.machine_id)
        if hashed is None or not self.hasher.verify(hashed, token.secret):
            raise AuthenticationFailed("Invalid token")
        return self.machines[token.machine_id]

    def _own_worker(self, token: MachineToken, worker_id: WorkerId) -> model.Worker:
        self._auth(token)
        worker = self.workers.get(worker_id)
        if worker is None or worker.machine_id != token.machine_id:
            raise NotFound("No such worker.")
        return worker

    def _workers_of(self, machine_id: MachineId) -> list[model.Worker]:
        mine = [w for w in self.workers.values() if w.machine_id == machine_id]
        return _oldest_first(mine, lambda w: w.created_at)

    async def authenticate(self, token: MachineToken) -> model.Machine:
        return self._auth(token)

    async def go_online(
        self, token: MachineToken, root_directory: str, lease: Lease | None = None
    ) -> model.Machine:
        current = self._auth(token)
        if lease is not None:
            holder, until = self.leases.get(current.machine_id, (None, None))
            now = self._now()
            lease_rules.check_claim(holder, until, now, lease.instance)
            self.leases[current.machine_id] = (lease.instance, now + lease.duration)
        machine = attrs.evolve(
            current,
            status=model.MachineStatus.ONLINE,
            root_directory=root_directory,
            last_heartbeat=self._now(),
        )
        self.machines[machine.machine_id] = machine
        self._recover_commands(machine.machine_id)
        await self._commit()
        return machine

    async def heartbeat(self, token: MachineToken, lease: Lease | None = None) -> model.Machine:
        current = self._auth(token)
        now = self._now()
        if lease is not None:
            holder, _ = self.leases.get(current.machine_id, (None, None))
            lease_rules.check_renewal(holder, lease.instance)
            self.leases[current.machine_id] = (lease.instance, now + lease.duration)
        machine = attrs.evolve(current, status=model.MachineStatus.ONLINE, last_heartbeat=now)
        self.machines[machine.machine_id] = machine
        await self._commit()
        return machine

    def _set_offline(self, machine: model.Machine) -> None:
        self.machines[machine.machine_id] = attrs.evolve(
            machine, status=model.MachineStatus.OFFLINE
        )
        for worker in self._workers_of(machine.machine_id):
            if worker.status is model.WorkerStatus.ONLINE:
                self.workers[worker.worker_id] = attrs.evolve(
                    worker, status=model.WorkerStatus.OFFLINE
                )

    async def go_offline(self, token: MachineToken, lease: Lease | None = None) -> None:
        machine = self._auth(token)
        holder, _ = self.leases.get(machine.machine_id, (None, None))
        if not lease_rules.may_release(holder, lease.instance if lease else None):
            return
        self.leases.pop(machine.machine_id, None)
        self._set_offline(machine)
        await self._commit()

    async def list_own_workers(self, token: MachineToken) -> list[model.Worker]:
        return self._workers_of(self._auth(token).machine_id)

    async def register_worker(
        self, token: MachineToken, worker_token: WorkerToken, directory: str, name: str | None
    ) -> model.Worker:
        place = workers.worker_place(directory, name)
        self._auth(token)
        issued, worker = workers.register_worker(
            token.machine_id,
            worker_token,
            self.worker_tokens.get(worker_token.worker_id),
            place,
            len(self._workers_of(token.machine_id)),
            self._now(),
        )
        self.worker_tokens[issued.worker_id] = issued
        self.workers[worker.worker_id] = worker
        await self._commit()
        return worker

    async def _set_status(
        self,
        token: MachineToken,
        worker_id: WorkerId,
        target: model.WorkerStatus,
        problem: str | None = None,
    ) -> model.Worker:
        worker = workers.set_worker_status(
            self._own_worker(token, worker_id), target, problem, self._now
        )
        self.workers[worker_id] = worker
        await self._commit()
        return worker

    async def worker_heartbeat(self, token: MachineToken, worker_id: WorkerId) -> model.Worker:
        return await self._set_status(token, worker_id, model.WorkerStatus.ONLINE)

    async def worker_offline(
        self, token: MachineToken, worker_id: WorkerId, problem: str | None = None
    ) -> model.Worker:
        return await self._set_status(token, worker_id, model.WorkerStatus.OFFLINE, problem)

    async def update_worker_models(
        self, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
    ) -> model.Worker:
        worker = attrs.evolve(self._own_worker(token, worker_id), models=tuple(models))
        self.workers[worker_id] = worker
        await self._commit()
        return worker

    async def update_worker_agents(
        self, token: MachineToken, worker_id: WorkerId, catalog: AgentCatalog
    ) -> model.Worker:
        worker = attrs.evolve(
            self._own_worker(token, worker_id), agents=catalog.agents, commands=catalog.commands
        )
        self.workers[worker_id] = worker
        await self._commit()
        return worker

    def watch_own_workers(self, token: MachineToken) -> AsyncGenerator[list[model.Worker], None]:
        return self._watch(partial(self.list_own_workers, token))

    # --- user side ----------------------------------------------------------------

    def _owned_machine(self, user: UserId, machine_id: MachineId) -> model.Machine:
        machine = self.machines.get(machine_id)
        if machine is None or machine.user_id != user:
            raise NotFound("No such machine.")
        return machine

    def _owned_worker(self, user: UserId, worker_id: WorkerId) -> model.Worker:
        worker = self.workers.get(worker_id)
        machine = self.machines.get(worker.machine_id) if worker else None
        if worker is None or machine is None or machine.user_id != user:
            raise NotFound("No such worker.")
        return worker

    async def create_machine(self, user: UserId, name: str) -> tuple[model.Machine, MachineToken]:
        name = model.validate_name(name, "Machine name")
        if user not in self.users:
            raise NotFound("No such user.")
        token = MachineToken(MachineId(self.ids.new_id("machine")), self.ids.new_secret())
        self.secret_hashes[token.machine_id] = self.hasher.hash(token.secret)
        machine = model.Machine(
            token.machine_id, user, name, model.MachineStatus.OFFLINE, self._now()
        )
        self.machines[machine.machine_id] = machine
        await self._commit()
        return machine, token

    async def list_machines(self, user: UserId) -> list[model.MachineSummary]:
        mine = [m for m in self.machines.values() if m.user_id == user]
        summaries = []
        for machine in _oldest_first(mine, lambda m: m.created_at):
            statuses = [w.status.value for w in self._workers_of(machine.machine_id)]
            counts = model.WorkerCounts(
                **{s.value: statuses.count(s.value) for s in model.WorkerStatus}
            )
            summaries.append(model.MachineSummary(machine, counts))
        return summaries

    async def list_machines_page(
        self, user: UserId, cursor: str | None = None, limit: int | None = None
    ) -> Page[model.MachineSummary]:
        count = page_limit(limit, MACHINE_PAGE, MACHINE_PAGE)
        after = decode_cursor(cursor, MACHINES, user)
        found = await self.list_machines(user)
        items, more = page_from_list(found, after, count, lambda _: 1, _summary_id)
        return make_page(items, more, MACHINES, user, _summary_id)

    async def get_machine(self, user: UserId, machine_id: MachineId) -> model.Machine:
        return self._owned_machine(user, machine_id)

    async def delete_machine(self, user: UserId, machine_id: MachineId) -> None:
        self._owned_machine(user, machine_id)
        self._pause_jobs_of(w.worker_id for w in self._workers_of(machine_id))
        del self.machines[machine_id], self.secret_hashes[machine_id]
        self._drop_chat_of({w.worker_id for w in self._workers_of(machine_id)})
        self._drop_commands_of(machine_id)
        for worker in self._workers_of(machine_id):
            del self.workers[worker.worker_id]
        for issued in list(self.worker_tokens.values()):
            if issued.machine_id == machine_id:
                del self.worker_tokens[issued.worker_id]
        await self._commit()

    async def _add_worker(
        self, user: UserId, machine_id: MachineId, place: Place, policy: PermissionPolicy
    ) -> model.Worker:
        self._owned_machine(user, machine_id)
        existing = len(self._workers_of(machine_id))
        now, worker_id = self._now(), WorkerId(self.ids.new_id("worker"))
        worker = workers.add_worker(worker_id, machine_id, place, policy, existing, user, now)
        self.workers[worker_id] = worker
        await self._commit()
        return worker

    async def set_worker_permission_policy(
        self, user: UserId, worker_id: WorkerId, permission_policy: PermissionPolicy
    ) -> model.Worker:
        worker = attrs.evolve(
            self._owned_worker(user, worker_id), permission_policy=permission_policy
        )
        self.workers[worker_id] = worker
        await self._commit()
        return worker

    async def issue_worker_token(self, user: UserId, machine_id: MachineId) -> WorkerToken:
        self._owned_machine(user, machine_id)
        worker_id = WorkerId(self.ids.new_id("worker"))
        self.worker_tokens[worker_id] = model.IssuedWorkerToken(worker_id, machine_id, self._now())
        return WorkerToken(machine_id, worker_id)

    async def approve_worker(self, user: UserId, worker_id: WorkerId) -> model.Worker:
        worker = workers.approve_worker(self._owned_worker(user, worker_id), user, self._now())
        self.workers[worker_id] = worker
        await self._commit()
        return worker

    async def reject_worker(self, user: UserId, worker_id: WorkerId) -> None:
        workers.ensure_pending(self._owned_worker(user, worker_id), "rejected")
        del self.workers[worker_id]
        await self._commit()

    async def remove_worker(self, user: UserId, worker_id: WorkerId) -> None:
        self._owned_worker(user, worker_id)
        self._pause_jobs_of({worker_id})
        self._drop_chat_of({worker_id})
        del self.workers[worker_id]
        await self._commit()

    async def get_worker(self, user: UserId, worker_id: WorkerId) -> model.Worker:
        return self._owned_worker(user, worker_id)

    async def list_workers(self, user: UserId, machine_id: MachineId) -> list[model.Worker]:
        return self._workers_of(self._owned_machine(user, machine_id).machine_id)

    async def list_pending_workers(self, user: UserId) -> list[model.Worker]:
        mine = {m.machine_id for m in self.machines.values() if m.user_id == user}
        pending = [w for w in self.workers.values() if w.machine_id in mine and w.status is PENDING]
        return _oldest_first(pending, lambda w: w.created_at)

    def watch_machines(self, user: UserId) -> AsyncGenerator[list[model.MachineSummary], None]:
        return self._watch(partial(self.list_machines, user))

    def watch_workers(
        self, user: UserId, machine_id: MachineId
    ) -> AsyncGenerator[list[model.Worker], None]:
        return self._watch(partial(self.list_workers, user, machine_id))

    # --- accounts and maintenance ------------------------------------------------

    async def create_user(self, username: str, password_hash: str) -> model.User:
        if any(u.username == username for u in self.users.values()):
            raise Conflict("That username is taken. Choose another one.")
        user = model.User(UserId(self.ids.new_id("user")), username, self._now())
        self.users[user.user_id] = user
        self.password_hashes[user.user_id] = password_hash
        return user

    async def find_user(self, username: str) -> tuple[model.User, str] | None:
        for user in self.users.values():
            if user.username == username:
                return user, self.password_hashes[user.user_id]
        return None

    async def get_user(self, user_id: UserId) -> model.User:
        if user_id not in self.users:
            raise NotFound("No such user.")
        return self.users[user_id]

    async def list_users(self) -> list[model.User]:
        return _oldest_first(list(self.users.values()), lambda u: u.created_at)

    async def count_users(self) -> int:
        return len(self.users)

    async def set_password_hash(self, user_id: UserId, password_hash: str) -> None:
        await self.get_user(user_id)
        self.password_hashes[user_id] = password_hash

    async def add_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        await self.get_user(user_id)
        kept = self.sign_ins.setdefault(user_id, [])
        kept.append(sign_in_id)
        del kept[: -model.MAX_SIGN_INS_PER_USER]

    async def has_sign_in(self, user_id: UserId, sign_in_id: str) -> bool:
        return sign_in_id in self.sign_ins.get(user_id, [])

    async def end_sign_in(self, user_id: UserId, sign_in_id: str) -> None:
        kept = self.sign_ins.get(user_id, [])
        if sign_in_id in kept:
            kept.remove(sign_in_id)

    async def end_other_sign_ins(self, user_id: UserId, keep: str | None) -> int:
        kept = self.sign_ins.get(user_id, [])
        ended = [s for s in kept if s != keep]
        self.sign_ins[user_id] = [s for s in kept if s == keep]
        return len(ended)

    async def mark_stale_machines_offline(self, last_seen_before: datetime) -> list[MachineId]:
        cutoff = _ms(last_seen_before)
        stale = [
            m
            for m in _oldest_first(list(self.machines.values()), lambda m: m.created_at)
            if m.status is model.MachineStatus.ONLINE
            and (m.last_heartbeat is None or m.last_heartbeat < cutoff)
        ]
        for machine in stale:
            await self._end_replies_of(machine.machine_id)
            self._set_offline(machine)
        if stale:
            await self._commit()
        return [m.machine_id for m in stale]

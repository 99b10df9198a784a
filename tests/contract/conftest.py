"""One backend per implementation; every contract test runs against each of them.

To add an implementation, add a factory to ``FACTORIES``: the tests only use
the ``Backend`` port. ``convex`` runs the TypeScript functions of
``backend_convex`` in a loopback harness (see ``convex_harness.py``) behind the
real Convex adapter, its subscriptions polled over the HTTP API; ``convex-client``
is the same through ``ClientTransport``, whose subscription child process runs
a polling stand-in for ``convex.ConvexClient``; ``convex-sync`` runs the real
``ConvexClient`` in that child against the harness's stand-in for Convex's sync
protocol (``/api/sync``; a stand-in written from the protocol's message shapes,
not Convex's implementation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar

import attrs
import pytest

from orchestrator.adapters.convex import ClientTransport, ConvexBackend, HttpTransport
from orchestrator.adapters.embedded import open_backend
from orchestrator.adapters.system import Argon2Hasher
from orchestrator.domain.chat import ChatMessage, ChatSession, SessionWork
from orchestrator.domain.ids import ChatSessionId, MachineToken, UserId, WorkerToken
from orchestrator.domain.model import Machine, Worker
from orchestrator.domain.parts import StreamEvent
from orchestrator.domain.ports import Backend, LiveEventStore
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds
from tests.contract.convex_harness import ConvexHarness, new_server_secret, unavailable_reason
from tests.contract.convex_stand_in_client import FACTORY as STAND_IN_CLIENT

T = TypeVar("T")


def _clock() -> FakeClock:
    # Every reading moves 1 ms on, so records created one after the other differ in time.
    return FakeClock(tick=timedelta(milliseconds=1))


async def _memory(tmp_path: Path) -> Backend:
    return InMemoryBackend(clock=_clock(), ids=SequentialIds(), hasher=PlainHasher())


async def _sqlite(tmp_path: Path) -> Backend:
    return await open_backend(
        tmp_path / "data" / "orchestrator.sqlite3",
        clock=_clock(),
        ids=SequentialIds(),
        hasher=Argon2Hasher(fast=True),
        poll_interval=0.05,
    )


_harness: ConvexHarness | None = None


def _started_harness() -> ConvexHarness:
    global _harness
    if reason := unavailable_reason():
        pytest.skip(reason)
    if _harness is None:
        _harness = ConvexHarness(server_secret=new_server_secret()).start()
    return _harness


async def _convex(tmp_path: Path) -> Backend:
    """The TypeScript functions (run by the loopback harness) behind the real Python adapter."""
    harness = _started_harness()
    transport = HttpTransport(harness.new_deployment(), timeout=10, poll_interval=0.02)
    return ConvexBackend(transport, server_secret=harness.server_secret)


async def _convex_client(tmp_path: Path) -> Backend:
    """The same, through ``ClientTransport``: its subscription child runs a polling stand-in."""
    harness = _started_harness()
    transport = ClientTransport(
        harness.new_deployment(), timeout=10, client_factory=STAND_IN_CLIENT
    )
    return ConvexBackend(transport, server_secret=harness.server_secret)


@pytest.fixture(scope="session", autouse=True)
def _stop_convex_harness() -> Iterator[None]:
    """Stop the harness process, if a test started it, when the session ends."""
    yield
    if _harness is not None:
        _harness.stop()


async def _convex_sync(tmp_path: Path) -> Backend:
    """The same through the official ``convex.ConvexClient`` (in its child process),
    subscribed to the harness's stand-in for Convex's sync protocol."""
    harness = _started_harness()
    transport = ClientTransport(harness.new_deployment(sync=True), timeout=10)
    return ConvexBackend(transport, server_secret=harness.server_secret)


FACTORIES: dict[str, Callable[[Path], Awaitable[Backend]]] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "convex": _convex,
    "convex-client": _convex_client,
    "convex-sync": _convex_sync,
}


#: A module mark for contracts only the embedded (SQLite) backend keeps.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest.fixture(params=sorted(FACTORIES))
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Backend]:
    """Each backend in turn (a module narrows them with ``parametrize("backend", [...])``)."""
    created = await FACTORIES[request.param](tmp_path)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def alice(backend: Backend) -> UserId:
    return (await backend.create_user("alice", "hash-of-alice")).user_id


@pytest.fixture
async def bob(backend: Backend) -> UserId:
    return (await backend.create_user("bob", "hash-of-bob")).user_id


MachineFactory = Callable[..., Awaitable[tuple[Machine, MachineToken]]]


@pytest.fixture
def new_machine(backend: Backend, alice: UserId) -> MachineFactory:
    """Create a machine (of alice unless told otherwise), optionally online."""

    async def create(
        name: str = "laptop", *, user: UserId | None = None, online: bool = False
    ) -> tuple[Machine, MachineToken]:
        machine, token = await backend.create_machine(user or alice, name)
        if online:
            machine = await backend.go_online(token, "/home/alice/code")
        return machine, token

    return create


async def issued_worker_token(
    backend: Backend, user: UserId, new_machine: MachineFactory, *, online: bool = False
) -> tuple[Machine, MachineToken, WorkerToken]:
    """A new machine of ``user`` and a worker token the owner issued for it."""
    machine, token = await new_machine(user=user, online=online)
    return machine, token, await backend.issue_worker_token(user, machine.machine_id)


async def pending_worker(
    backend: Backend, user: UserId, new_machine: MachineFactory, *, online: bool = False
) -> tuple[Machine, MachineToken, Worker]:
    """A new machine of ``user`` with one worker it registered by token, waiting for approval."""
    machine, token, worker_token = await issued_worker_token(
        backend, user, new_machine, online=online
    )
    return machine, token, await backend.register_worker(token, worker_token, "repo", None)


MODELS = ("fake/small", "fake/large")


@attrs.frozen
class Chat:
    """An online machine of alice with one worker (offering ``MODELS``) and one session."""

    machine: Machine
    token: MachineToken
    worker: Worker
    session: ChatSession


async def ready_worker(
    backend: Backend, alice: UserId, new_machine: MachineFactory
) -> tuple[Machine, MachineToken, Worker]:
    """An online machine of alice with one worker that offers ``MODELS``."""
    machine, token = await new_machine(online=True)
    worker = await backend.add_worker(alice, machine.machine_id, "repo", None)
    worker = await backend.update_worker_models(token, worker.worker_id, MODELS)
    return machine, token, worker


@pytest.fixture
async def chat(backend: Backend, alice: UserId, new_machine: MachineFactory) -> Chat:
    machine, token, worker = await ready_worker(backend, alice, new_machine)
    session = await backend.start_session(alice, worker.worker_id, MODELS[0])
    return Chat(machine, token, worker, session)


async def first_value(updates: AsyncIterator[T]) -> T:
    """The first value of a subscription (its current result); the subscription is closed after."""
    try:
        return await anext(updates)
    finally:
        await updates.aclose()  # type: ignore[attr-defined]


async def work_now(backend: Backend, token: MachineToken) -> list[SessionWork]:
    """The machine's current work list (the first value of its subscription)."""
    return await first_value(backend.watch_work(token))


async def ask(backend: Backend, user: UserId, chat: Chat, text: str = "hi") -> ChatMessage:
    """Send a message to the fixture's session."""
    return await backend.send_message(user, chat.session.chat_session_id, text)


async def claimed(backend: Backend, user: UserId, chat: Chat, text: str = "hi") -> ChatMessage:
    """Send a message to the fixture's session and claim it as the machine: the streaming reply."""
    message = await ask(backend, user, chat, text)
    return await backend.claim_message(chat.token, message.message_id)


@pytest.fixture
async def reply(backend: Backend, alice: UserId, chat: Chat) -> ChatMessage:
    """The machine's streaming reply to a message alice sent in the ``chat`` session."""
    return await claimed(backend, alice, chat)


class LiveReply(NamedTuple):
    """A backend that stores live events, and a streaming reply in the ``chat`` session."""

    store: LiveEventStore
    reply: ChatMessage
    session_id: ChatSessionId


@pytest.fixture
async def live(backend: Backend, chat: Chat, reply: ChatMessage) -> LiveReply:
    assert isinstance(backend, LiveEventStore)
    return LiveReply(backend, reply, chat.session.chat_session_id)


async def events_after(backend: Backend, user: UserId, chat: Chat, after: int) -> list[StreamEvent]:
    """The session's stream events after sequence ``after``, as its subscription first yields."""
    return list(await first_value(backend.watch_events(user, chat.session.chat_session_id, after)))

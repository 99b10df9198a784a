"""Use cases of accounts and machines, against the in-memory backend and fake hasher."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.application import accounts, machines
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.errors import AuthenticationFailed, InvalidInput, PathOutsideRoot
from orchestrator.domain.ids import MachineToken, UserId, WorkerToken
from orchestrator.domain.model import MachineStatus
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds

pytestmark = pytest.mark.anyio


@pytest.fixture
def hasher() -> PlainHasher:
    return PlainHasher()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock, hasher: PlainHasher) -> InMemoryBackend:
    return InMemoryBackend(clock=clock, ids=SequentialIds(), hasher=hasher)


@pytest.fixture
async def alice(backend: InMemoryBackend, hasher: PlainHasher) -> UserId:
    return (await accounts.create_user(backend, hasher, "alice", "correct horse")).user_id


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "root" / "repo").mkdir(parents=True)
    return machines.resolve_root(tmp_path / "root")


# --- accounts ---------------------------------------------------------------------


async def test_create_user_stores_only_the_hash(
    backend: InMemoryBackend, hasher: PlainHasher
) -> None:
    """A new account's password is stored as the hasher's output."""
    user = await accounts.create_user(backend, hasher, "alice", "correct horse")
    assert backend.password_hashes[user.user_id] == "plain$correct horse"
    assert hasher.hashes == 1


@pytest.mark.parametrize("username", ["", "-alice", "a b", "x" * 65, "alice!"])
async def test_create_user_refuses_bad_username(
    backend: InMemoryBackend, hasher: PlainHasher, username: str
) -> None:
    """A malformed username is refused before anything is hashed or stored."""
    with pytest.raises(InvalidInput, match="username"):
        await accounts.create_user(backend, hasher, username, "correct horse")
    assert (backend.users, hasher.hashes) == ({}, 0)


@pytest.mark.parametrize("password", ["short", "x" * 1025])
async def test_create_user_refuses_bad_password_length(
    backend: InMemoryBackend, hasher: PlainHasher, password: str
) -> None:
    """Passwords shorter than 8 or longer than 1024 characters are refused."""
    with pytest.raises(InvalidInput, match="password"):
        await accounts.create_user(backend, hasher, "alice", password)
    assert backend.users == {}


async def test_verify_password(
    backend: InMemoryBackend, hasher: PlainHasher, alice: UserId
) -> None:
    """The right password returns the account."""
    user = await accounts.verify_password(backend, hasher, "alice", "correct horse")
    assert user.user_id == alice


async def test_wrong_password_and_unknown_user_fail_alike(
    backend: InMemoryBackend, hasher: PlainHasher, alice: UserId
) -> None:
    """A wrong password and an unknown user give the same error and both cost a hash."""
    messages = []
    for username, password in [("alice", "wrong password"), ("nobody", "correct horse")]:
        work_before = hasher.hashes + hasher.verifies
        with pytest.raises(AuthenticationFailed) as raised:
            await accounts.verify_password(backend, hasher, username, password)
        messages.append(raised.value.message)
        assert hasher.hashes + hasher.verifies == work_before + 1
    assert messages == ["Wrong username or password."] * 2


async def test_overlong_password_is_refused(
    backend: InMemoryBackend, hasher: PlainHasher, alice: UserId
) -> None:
    """A password over the length limit gets the same sentence for any username, never a check."""
    for username in ("alice", "nobody"):
        with pytest.raises(InvalidInput, match="at most 1024 characters"):
            await accounts.verify_password(backend, hasher, username, "x" * 2000)


# --- machines, as a user ----------------------------------------------------------------


async def test_create_machine_cleans_name(backend: InMemoryBackend, alice: UserId) -> None:
    """The machine name is stripped; a blank one is refused and nothing is stored."""
    machine, _ = await machines.create_machine(backend, alice, "  laptop  ")
    assert machine.name == "laptop"
    with pytest.raises(InvalidInput):
        await machines.create_machine(backend, alice, " ")
    assert len(backend.machines) == 1


async def test_add_worker_normalizes_directory(backend: InMemoryBackend, alice: UserId) -> None:
    """Directories are normalised and a climbing one is refused."""
    machine, _ = await machines.create_machine(backend, alice, "laptop")
    worker = await machines.add_worker(backend, alice, machine.machine_id, "./a//b/", "")
    assert (worker.directory, worker.name) == ("a/b", None)
    with pytest.raises(PathOutsideRoot):
        await machines.add_worker(backend, alice, machine.machine_id, "../x")
    assert len(backend.workers) == 1


async def test_worker_token_flow(backend: InMemoryBackend, alice: UserId, root: Path) -> None:
    """Issue a token, register from the machine, approve, and it is no longer pending."""
    machine, token = await machines.create_machine(backend, alice, "laptop")
    worker_token = await machines.issue_worker_token(backend, alice, machine.machine_id)
    worker = await machines.register_worker(
        backend, token, worker_token, root, root / "repo", " Repo "
    )
    assert (worker.directory, worker.name) == ("repo", "Repo")
    assert await machines.list_pending_workers(backend, alice) == [worker]
    await machines.approve_worker(backend, alice, worker.worker_id)
    assert await machines.list_pending_workers(backend, alice) == []


async def test_register_worker_refuses_token_for_other_machine(
    backend: InMemoryBackend, alice: UserId, root: Path
) -> None:
    """A worker token for another machine is refused before the backend is asked."""
    _, token = await machines.create_machine(backend, alice, "laptop")
    other, _ = await machines.create_machine(backend, alice, "desktop")
    worker_token = await machines.issue_worker_token(backend, alice, other.machine_id)
    with pytest.raises(InvalidInput, match="another machine"):
        await machines.register_worker(backend, token, worker_token, root, "repo")
    assert backend.worker_tokens[worker_token.worker_id].used_at is None


async def test_update_worker_models_deduplicates(backend: InMemoryBackend, alice: UserId) -> None:
    """Models are stored once each, in order; empty or too many names are refused."""
    machine, token = await machines.create_machine(backend, alice, "laptop")
    worker = await machines.add_worker(backend, alice, machine.machine_id, "")
    updated = await machines.update_worker_models(backend, token, worker.worker_id, ["b", "a", "b"])
    assert updated.models == ("b", "a")
    for bad in ([""], [str(n) for n in range(machines.MAX_MODELS + 1)]):
        with pytest.raises(InvalidInput):
            await machines.update_worker_models(backend, token, worker.worker_id, bad)


async def test_update_worker_agents_deduplicates_and_bounds(
    backend: InMemoryBackend, alice: UserId
) -> None:
    """Agents and commands are stored once each, in order; empty or too many are refused."""
    machine, token = await machines.create_machine(backend, alice, "laptop")
    worker = await machines.add_worker(backend, alice, machine.machine_id, "")
    wid = worker.worker_id
    updated = await machines.update_worker_agents(
        backend, token, wid, AgentCatalog(("plan", "plan"), ("x",))
    )
    assert (updated.agents, updated.commands) == (("plan",), ("x",))
    for bad in ([""], [str(n) for n in range(machines.MAX_MODELS + 1)]):
        with pytest.raises(InvalidInput, match=r"^A worker offers at most "):
            await machines.update_worker_agents(
                backend, token, wid, AgentCatalog(("build",), tuple(bad))
            )
    assert backend.workers[wid].commands == ("x",)


async def test_mark_stale_machines_offline_uses_window(
    backend: InMemoryBackend, clock: FakeClock, alice: UserId
) -> None:
    """Machines silent for longer than the window go offline; recent ones stay online."""
    old, old_token = await machines.create_machine(backend, alice, "old")
    _, new_token = await machines.create_machine(backend, alice, "new")
    await backend.go_online(old_token, "/r")
    clock.advance(60)
    await backend.go_online(new_token, "/r")
    clock.advance(10)
    window = timedelta(seconds=30)
    assert await machines.mark_stale_machines_offline(backend, clock, window) == [old.machine_id]
    statuses = [s.machine.status for s in await machines.list_machines(backend, alice)]
    assert statuses == [MachineStatus.OFFLINE, MachineStatus.ONLINE]


async def test_authenticate_machine(backend: InMemoryBackend, alice: UserId) -> None:
    """A machine's own token authenticates; a parsed wrong one does not."""
    machine, token = await machines.create_machine(backend, alice, "laptop")
    assert (await machines.authenticate_machine(backend, token)).machine_id == machine.machine_id
    wrong = MachineToken.parse(f"{machine.machine_id}:sec_wrong")
    with pytest.raises(AuthenticationFailed, match=r"^Invalid token$"):
        await machines.authenticate_machine(backend, wrong)


async def test_delete_machine_forgets_workers(backend: InMemoryBackend, alice: UserId) -> None:
    """Deleting a machine deletes its workers and issued worker tokens."""
    machine, _ = await machines.create_machine(backend, alice, "laptop")
    await machines.add_worker(backend, alice, machine.machine_id, "")
    token = await machines.issue_worker_token(backend, alice, machine.machine_id)
    await machines.delete_machine(backend, alice, machine.machine_id)
    assert (backend.machines, backend.workers, backend.worker_tokens) == ({}, {}, {})
    assert isinstance(token, WorkerToken)


# --- the machine's root directory ----------------------------------------------------------


def test_relative_to_root(root: Path) -> None:
    """Paths inside the root, relative or absolute, become root-relative POSIX paths."""
    assert machines.relative_to_root(root, "repo") == "repo"
    assert machines.relative_to_root(root, root / "repo") == "repo"
    assert machines.relative_to_root(root, root) == ""
    assert machines.relative_to_root(root, "./repo/") == "repo"


@pytest.mark.parametrize("directory", ["../", "/etc", "repo/../../x"])
def test_relative_to_root_refuses_outside(root: Path, directory: str) -> None:
    """Paths that leave the root are refused."""
    with pytest.raises(PathOutsideRoot):
        machines.relative_to_root(root, directory)


def test_relative_to_root_refuses_symlink_escape(root: Path, tmp_path: Path) -> None:
    """A symlink inside the root that points outside it is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathOutsideRoot, match="outside the machine's root"):
        machines.relative_to_root(root, "escape")
    with pytest.raises(PathOutsideRoot):
        machines.relative_to_root(root, root / "escape")


def test_relative_to_root_follows_symlink_inside(root: Path) -> None:
    """A symlink that stays inside the root resolves to its target."""
    (root / "alias").symlink_to(root / "repo", target_is_directory=True)
    assert machines.relative_to_root(root, "alias") == "repo"


def test_resolve_root_refuses_missing_and_files(tmp_path: Path) -> None:
    """The root must exist and be a directory."""
    with pytest.raises(InvalidInput, match="does not exist"):
        machines.resolve_root(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="is a file"):
        machines.resolve_root(tmp_path / "file")
    assert machines.resolve_root(tmp_path) == tmp_path.resolve()

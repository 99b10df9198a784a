"""``orchestrator export`` / ``import``: every record moves, IDs kept; bad files change nothing.

Real SQLite on both sides, and the real TypeScript functions in the loopback
Convex harness as an import target.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.adapters.convex import ConvexBackend, HttpTransport
from orchestrator.adapters.embedded import SQLiteBackend, open_backend
from orchestrator.adapters.system import Argon2Hasher
from orchestrator.application import transfer
from orchestrator.domain.agent import AgentCatalog
from orchestrator.domain.chat import MAX_REPLY_LENGTH
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.jobs import JobDraft
from orchestrator.domain.model import MAX_WORKERS_PER_MACHINE
from orchestrator.domain.ports import Backend
from orchestrator.entrypoints.cli import app
from orchestrator.testing import FakeClock, SequentialIds
from tests.contract.convex_harness import ConvexHarness
from tests.contract.test_long_reply_contract import long_text

pytestmark = pytest.mark.anyio

runner = CliRunner()
SECRET_COUNTER = iter(range(1_000_000))


def new_secret() -> str:
    return f"sec_{next(SECRET_COUNTER):06d}" + "x" * 32


async def sqlite_at(path: Path, ids: SequentialIds | None = None) -> SQLiteBackend:
    return await open_backend(
        path,
        clock=FakeClock(tick=timedelta(milliseconds=1)),
        ids=ids or SequentialIds(),
        hasher=Argon2Hasher(fast=True),
    )


async def fill(backend: SQLiteBackend) -> None:
    """Two users; a machine with an approved and a pending worker; chats; a job with a run."""
    alice = (await backend.create_user("alice", "$argon2id$alice")).user_id
    await backend.create_user("bob", "$argon2id$bob")
    machine, token = await backend.create_machine(alice, "laptop")
    await backend.go_online(token, "/home/alice/code")
    worker = await backend.add_worker(alice, machine.machine_id, "app", "App")
    issued = await backend.issue_worker_token(alice, machine.machine_id)
    await backend.register_worker(token, issued, "lib", None)
    await backend.worker_heartbeat(token, worker.worker_id)
    await backend.update_worker_models(token, worker.worker_id, ["fake/small"])
    await backend.update_worker_agents(token, worker.worker_id, AgentCatalog(("build", "plan")))
    session = await backend.start_session(alice, worker.worker_id, "fake/small", agent="plan")
    question = await backend.send_message(
        alice, session.chat_session_id, "Hello ünïcode ✓", agent="build"
    )
    reply = await backend.claim_message(token, question.message_id)
    await backend.append_chunk(token, reply.message_id, "Hi")
    await backend.complete_message(token, reply.message_id, "Hi there " + "é" * 3000)
    await backend.send_message(alice, session.chat_session_id, "and another")
    # A reply of a million characters, 2.9 MB of UTF-8: more than one Convex document holds.
    long_session = await backend.start_session(alice, worker.worker_id, "fake/small")
    asked = await backend.send_message(alice, long_session.chat_session_id, "write a lot")
    long_reply = await backend.claim_message(token, asked.message_id)
    await backend.complete_message(token, long_reply.message_id, long_text(MAX_REPLY_LENGTH))
    draft = JobDraft(worker_id=worker.worker_id, name="nightly", model="fake/small",
                     prompt="run the tests", cron="0 3 * * *")  # fmt: skip
    now = datetime(2026, 1, 1, tzinfo=UTC)
    job = await backend.create_job(alice, draft, now)
    await backend.start_job_run(job.job_id, now, now + timedelta(days=1))


async def exported(backend: Backend) -> list[str]:
    return [line async for line in transfer.export_lines(backend)]


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    backend = await sqlite_at(tmp_path / "source.sqlite3")
    await fill(backend)
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    backend = await sqlite_at(tmp_path / "target.sqlite3")
    try:
        yield backend
    finally:
        await backend.close()


async def test_the_file_has_a_version_line_and_every_kind_of_record(
    source: SQLiteBackend,
) -> None:
    """The export starts with its format line and holds users to runs, chunks left out."""
    lines = await exported(source)
    assert json.loads(lines[0]) == {"format": "orchestrator-export", "version": 1}
    records = [json.loads(line) for line in lines[1:]]
    assert {r["type"] for r in records} == set(transfer.FIELDS)
    assert all(set(r) == {"type", *transfer.FIELDS[r["type"]]} for r in records)
    longest = max(len(r["content"]) for r in records if r["type"] == "message")
    assert longest == MAX_REPLY_LENGTH
    [worker] = [r for r in records if r["type"] == "worker" and r["name"] == "App"]
    assert (worker["status"], worker["models"]) == ("offline", ["fake/small"])
    # The agent a session and a message use, and the model that wrote a reply, move too.
    assert [r["agent"] for r in records if r["type"] == "session"][:2] == ["plan", None]
    [hello, reply] = [r for r in records if r["type"] == "message"][:2]
    assert (hello["agent"], hello["model"]) == ("build", None)
    assert (reply["agent"], reply["model"]) == (None, "fake/small")


async def round_trip(source: SQLiteBackend, target: transfer.Restorer) -> transfer.Imported:
    records = transfer.parse(await exported(source))
    progress: list[str] = []
    done = await transfer.import_records(
        records, target, new_secret=new_secret, report=progress.append
    )
    assert progress[-1].startswith(f"Imported {len(records)} of {len(records)} records")
    return done


async def test_sqlite_to_sqlite_round_trip_is_the_same_file(
    source: SQLiteBackend, target: SQLiteBackend
) -> None:
    """Export, import into an empty SQLite, export again: the same lines; the new token works."""
    before = await exported(source)
    done = await round_trip(source, target)
    assert await exported(target) == before
    [(name, token)] = done.machines
    assert name == "laptop"
    assert (await target.authenticate(token)).name == "laptop"
    again = await round_trip(source, target)  # an interrupted import simply runs again
    assert (again.written, again.skipped, again.machines) == (0, len(before) - 1, [])
    assert await exported(target) == before


async def test_sqlite_to_convex_round_trip_is_the_same_file(
    source: SQLiteBackend, harness: ConvexHarness
) -> None:
    """The same file comes back out of the Convex functions; the machine's new token works there."""
    convex = ConvexBackend(
        HttpTransport(harness.new_deployment(), timeout=10), server_secret=harness.server_secret
    )
    try:
        before = await exported(source)
        done = await round_trip(source, convex)
        assert await exported(convex) == before
        [(_, token)] = done.machines
        assert (await convex.authenticate(token)).name == "laptop"
        again = await round_trip(source, convex)
        assert (again.written, again.machines) == (0, [])
        assert await exported(convex) == before
    finally:
        await convex.close()


async def test_an_account_taken_by_another_user_is_refused(
    source: SQLiteBackend, tmp_path: Path, harness: ConvexHarness
) -> None:
    """alice created on the target first (another ID): one sentence, nothing else written."""
    target = await sqlite_at(tmp_path / "other.sqlite3", SequentialIds(issued=1000))
    convex = ConvexBackend(
        HttpTransport(harness.new_deployment(), timeout=10), server_secret=harness.server_secret
    )
    try:
        for backend in (target, convex):
            await backend.create_user("alice", "another hash")
            records = transfer.parse(await exported(source))
            with pytest.raises(InvalidInput, match=r"^The username 'alice' is already used"):
                await transfer.import_records(
                    records, backend, new_secret=new_secret, report=lambda _: None
                )
            assert [u.username for u in await backend.list_users()] == ["alice"]
    finally:
        await convex.close()
        await target.close()


@pytest.mark.parametrize(
    ("lines", "sentence"),
    [
        (['{"format": "orchestrator-export", "version": 2}'], r"^Line 1: this export has version"),
        (['{"format": "something-else"}'], r"^Line 1: this is not an orchestrator export"),
        ([], r"^The file is empty"),
        (
            ['{"format": "orchestrator-export", "version": 1}',
             '{"type": "user", "userId": "usr_1", "username": "a", "passwordHash": "h",'
             ' "createdAt": 1}',
             '{"type": "user", "userId": '],
            r"^Line 3 is not valid JSON",
        ),
        (
            ['{"format": "orchestrator-export", "version": 1}', '{"type": "robot"}'],
            r"^Line 2: unknown record type 'robot'",
        ),
        (
            ['{"format": "orchestrator-export", "version": 1}',
             '{"type": "user", "userId": "usr_1", "username": "a", "createdAt": 1}'],
            r"^Line 2: a user record needs the field 'passwordHash'\.$",
        ),
        (
            ['{"format": "orchestrator-export", "version": 1}',
             '{"type": "user", "userId": "usr_1", "username": "a", "passwordHash": "h",'
             ' "createdAt": "yesterday"}'],
            r"^Line 2: 'createdAt' must be an integer",
        ),
    ],
)  # fmt: skip
def test_a_bad_file_is_one_sentence_naming_the_line(lines: list[str], sentence: str) -> None:
    """A file of another version or with a malformed line is refused before anything is read."""
    with pytest.raises(InvalidInput, match=sentence):
        transfer.parse(lines)


async def test_a_file_written_before_agents_and_models_moved_still_imports(
    source: SQLiteBackend, target: SQLiteBackend
) -> None:
    """Sessions and messages without ``agent`` and ``model`` (older exports) arrive without them."""
    older = [json.loads(line) for line in await exported(source)]
    for record in older:
        if record.get("type") == "session":
            del record["agent"]
        elif record.get("type") == "message":
            del record["agent"], record["model"]
    records = transfer.parse(json.dumps(record) for record in older)
    await transfer.import_records(records, target, new_secret=new_secret, report=lambda _: None)
    again = [json.loads(line) for line in (await exported(target))[1:]]
    chats = [r for r in again if r["type"] in ("session", "message")]
    assert chats
    assert all(r["agent"] is None for r in chats)
    assert all(r["model"] is None for r in chats if r["type"] == "message")
    assert {r["model"] for r in chats if r["type"] == "session"} == {"fake/small"}


def _machine_with_workers(count: int) -> list[str]:
    """An export file of one machine with ``count`` workers."""
    header = '{"format": "orchestrator-export", "version": 1}'
    user = {"type": "user", "userId": "usr_1", "username": "a", "passwordHash": "h", "createdAt": 1}
    machine = {
        "type": "machine", "machineId": "mch_1", "userId": "usr_1", "name": "laptop",
        "createdAt": 1, "rootDirectory": None,
    }  # fmt: skip
    worker: dict[str, object] = {
        "type": "worker", "machineId": "mch_1", "name": None, "status": "offline",
        "createdAt": 1, "approvedAt": None, "approvedBy": None, "models": [],
    }  # fmt: skip
    workers = [{**worker, "workerId": f"wrk_{n}", "directory": f"repo{n}"} for n in range(count)]
    return [header, *(json.dumps(r) for r in [user, machine, *workers])]


def test_a_file_with_more_workers_than_a_machine_may_have_is_refused() -> None:
    """A machine may have MAX_WORKERS_PER_MACHINE workers on every backend; one more is refused."""
    assert len(transfer.parse(_machine_with_workers(MAX_WORKERS_PER_MACHINE))) == 102
    with pytest.raises(InvalidInput) as refused:
        transfer.parse(_machine_with_workers(MAX_WORKERS_PER_MACHINE + 1))
    assert refused.value.message == (
        f"Line 104: machine mch_1 has more than {MAX_WORKERS_PER_MACHINE} workers;"
        f" a machine can have at most {MAX_WORKERS_PER_MACHINE}."
    )


def test_the_cli_exports_imports_and_prints_the_re_pair_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orchestrator export` then `import` into another data directory, re-run, bad file."""
    monkeypatch.delenv("CONVEX_URL", raising=False)
    first, second, dump = tmp_path / "first", tmp_path / "second", tmp_path / "all.jsonl"
    made = runner.invoke(
        app, ["user", "create", "alice", "--password-stdin", "--data-dir", str(first)],
        input="long enough pw\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    machine = runner.invoke(
        app, ["machine", "create", "laptop", "--user", "alice", "--data-dir", str(first)]
    )
    assert machine.exit_code == 0, machine.output

    out = runner.invoke(app, ["export", str(dump), "--data-dir", str(first)])
    assert out.exit_code == 0, out.output
    assert "Exported 2 records" in out.output
    imported = runner.invoke(app, ["import", str(dump), "--data-dir", str(second)])
    assert imported.exit_code == 0, imported.output
    assert "Imported 2 of 2 records" in imported.output
    command = re.search(r"laptop: (orchestrator worker start --token (\S+) .*)", imported.output)
    assert command is not None
    assert "--server http://127.0.0.1:8080" in command.group(1)
    token = MachineToken.parse(command.group(2))

    again = runner.invoke(app, ["import", str(dump), "--data-dir", str(second)])
    assert again.exit_code == 0, again.output
    assert "Imported 0 records; 2 were already there." in again.output
    assert "worker start" not in again.output

    second_dump = tmp_path / "again.jsonl"
    assert (
        runner.invoke(app, ["export", str(second_dump), "--data-dir", str(second)]).exit_code == 0
    )
    assert second_dump.read_text() == dump.read_text()
    assert token.machine_id in dump.read_text()

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "orchestrator-export", "version": 9}\n')
    refused = runner.invoke(app, ["import", str(bad), "--data-dir", str(tmp_path / "third")])
    assert refused.exit_code == 2
    assert "Line 1: this export has version 9" in refused.output
    assert not (tmp_path / "third" / "orchestrator.sqlite3").exists()

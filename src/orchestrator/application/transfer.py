"""Moving everything from one backend to another: ``orchestrator export`` and ``import``.

The file is JSON Lines. Its first line names the format and its version::

    {"format": "orchestrator-export", "version": 1}

Every other line is one record, ``{"type": ..., <fields>}``, with camelCase
fields, timestamps in integer milliseconds since the epoch and absent values as
``null``. Types, in the order they are written (each record after those it
refers to; within a type oldest first, then by ID):

* ``user``: userId, username, passwordHash (the argon2 hash), createdAt
* ``machine``: machineId, userId, name, createdAt, rootDirectory
* ``worker``: workerId, machineId, name, directory, status, createdAt,
  approvedAt, approvedBy, models
* ``session``: chatSessionId, workerId, userId, model, status, createdAt,
  lastActivity, title, agent
* ``message``: messageId, chatSessionId, role, content, status, timestamp,
  replyTo, error, agent, model
* ``job``: jobId, userId, workerId, name, model, prompt, cron, timezone,
  enabled, sessionMode, createdAt, nextRunAt, chatSessionId, pausedReason
* ``run``: runId, jobId, scheduledFor, createdAt, status, chatSessionId,
  messageId, finishedAt, error

``agent`` (of a session and of a message) and ``model`` (of a message) came
later: a file without them is read as if they were null.

What does not move: machine tokens (stored hashed, so the import gives each
machine a new one and prints the command that re-pairs it), whether a machine
or worker is online (everything arrives offline), streamed chunks and the
typed parts of a reply (its tool calls, reasoning and step figures; its text is
in its message), directory commands, permission requests and questions.

Import checks the whole file before it writes anything, then writes in
batches; a record whose ID is already stored is left alone, so an interrupted
import can simply run again.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Sized,
)
from datetime import datetime
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

import attrs

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.ids import MachineId, MachineToken
from orchestrator.domain.jobs import JOB_RUNS_LIMIT
from orchestrator.domain.model import MAX_WORKERS_PER_MACHINE, WorkerStatus
from orchestrator.domain.ports import Backend
from orchestrator.domain.times import to_ms

FORMAT: Final = "orchestrator-export"
VERSION: Final = 1
HEADER: Final = {"format": FORMAT, "version": VERSION}

#: Each type's fields, in the order they are written (``type`` comes first).
FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "user": ("userId", "username", "passwordHash", "createdAt"),
    "machine": ("machineId", "userId", "name", "createdAt", "rootDirectory"),
    "worker": (
        "workerId", "machineId", "name", "directory", "status", "createdAt", "approvedAt",
        "approvedBy", "models",
    ),
    "session": (
        "chatSessionId", "workerId", "userId", "model", "status", "createdAt", "lastActivity",
        "title", "agent",
    ),
    "message": (
        "messageId", "chatSessionId", "role", "content", "status", "timestamp", "replyTo", "error",
        "agent", "model",
    ),
    "job": (
        "jobId", "userId", "workerId", "name", "model", "prompt", "cron", "timezone", "enabled",
        "sessionMode", "createdAt", "nextRunAt", "chatSessionId", "pausedReason",
    ),
    "run": (
        "runId", "jobId", "scheduledFor", "createdAt", "status", "chatSessionId", "messageId",
        "finishedAt", "error",
    ),
}  # fmt: skip
#: The field holding each type's ID.
ID_FIELD: Final = {kind: fields[0] for kind, fields in FIELDS.items()}
#: Fields that may be null; every other field must be present and not null.
_NULLABLE: Final = frozenset(
    {
        "rootDirectory", "name", "approvedAt", "approvedBy", "title", "replyTo", "error",
        "workerId", "nextRunAt", "chatSessionId", "pausedReason", "status", "messageId",
        "finishedAt",
    }
)  # fmt: skip
#: Fields added after version 1 was first written: absent reads as null.
_ADDED_LATER: Final = frozenset({("session", "agent"), ("message", "agent"), ("message", "model")})
_INTEGER_FIELDS: Final = frozenset(
    {
        "createdAt", "approvedAt", "lastActivity", "timestamp", "nextRunAt", "scheduledFor",
        "finishedAt",
    }
)  # fmt: skip
#: Records written per call of the target; also bounded by size (Convex caps a call's writes).
BATCH_RECORDS: Final = 100
BATCH_CHARS: Final = 2_000_000

Record = dict[str, Any]
T = TypeVar("T")
Report = Callable[[str], None]


@runtime_checkable
class Restorer(Protocol):
    """A backend that can store exported records under their own IDs."""

    async def restore(self, kind: str, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Store the records whose ID is not stored yet; return the IDs it stored.

        A ``machine`` record carries ``secret``, the new machine secret to hash.
        """
        ...


@attrs.frozen
class Imported:
    """What an import did: records written, and the new token of each machine it created."""

    written: int
    skipped: int
    machines: list[tuple[str, MachineToken]]


def taken(username: str) -> str:
    """The sentence for an account whose username another account here already has."""
    return (
        f"The username {username!r} is already used by another account here. Import into an"
        " empty backend, before creating any account."
    )


# --- export ----------------------------------------------------------------------


def _value(raw: object) -> object:
    if isinstance(raw, datetime):
        return to_ms(raw)
    if isinstance(raw, enum.Enum):
        return raw.value
    if isinstance(raw, tuple):
        return list(raw)
    return raw


def _record(kind: str, value: object, **given: object) -> Record:
    """``value`` as a ``kind`` record: each field read from the attribute of its snake_case name
    (times in ms, enums as their values, tuples as lists), unless ``given``."""
    record = {
        field: given[field] if field in given else _value(getattr(value, _snake(field)))
        for field in FIELDS[kind]
    }
    if kind == "worker" and record["status"] == WorkerStatus.ONLINE.value:
        # Its machine arrives offline and must be re-paired: an online worker arrives offline too.
        record["status"] = WorkerStatus.OFFLINE.value
    return record


def _snake(field: str) -> str:
    return re.sub(r"([A-Z])", r"_\1", field).lower()


def _oldest(kind: str, values: Iterable[T], when: str = "createdAt") -> list[tuple[Record, T]]:
    """The ``kind`` records of ``values`` (each beside its value), oldest first, then by ID."""
    pairs = [(_record(kind, value), value) for value in values]
    return sorted(pairs, key=lambda pair: (pair[0][when], pair[0][ID_FIELD[kind]]))


def line(kind: str, record: Mapping[str, Any]) -> str:
    """One line of the file (no newline): the record's fields in their documented order."""
    return json.dumps({"type": kind, **{f: record[f] for f in FIELDS[kind]}}, ensure_ascii=False)


async def export_records(backend: Backend) -> AsyncIterator[tuple[str, Record]]:
    """Every record of ``backend`` through its port, parents before children, in a fixed order."""
    users = sorted(await backend.list_users(), key=lambda u: (u.created_at, u.user_id))
    for user in users:
        found = await backend.find_user(user.username)
        yield "user", _record("user", user, passwordHash=found[1] if found is not None else "")
    for user in users:
        summaries = await backend.list_machines(user.user_id)
        for machine, _ in _oldest("machine", (s.machine for s in summaries)):
            yield "machine", machine
            workers = await backend.list_workers(user.user_id, MachineId(machine["machineId"]))
            for worker_record, worker in _oldest("worker", workers):
                yield "worker", worker_record
                sessions = await backend.list_sessions(user.user_id, worker.worker_id)
                for session_record, session in _oldest("session", sessions):
                    yield "session", session_record
                    messages = await backend.list_messages(user.user_id, session.chat_session_id)
                    for message, _ in _oldest("message", messages, "timestamp"):
                        yield "message", message
        jobs = await backend.list_jobs(user.user_id)
        for job_record, job in _oldest("job", jobs):
            yield "job", job_record
            runs = await backend.list_job_runs(user.user_id, job.job_id, limit=JOB_RUNS_LIMIT)
            for run, _ in _oldest("run", runs):
                yield "run", run


async def export_lines(backend: Backend) -> AsyncIterator[str]:
    """The file's lines (without newlines): the header, then every record."""
    yield json.dumps(HEADER)
    async for kind, record in export_records(backend):
        yield line(kind, record)


# --- import ----------------------------------------------------------------------


def _check(number: int, kind: str, record: Mapping[str, Any]) -> Record:
    checked: Record = {}
    for field in FIELDS[kind]:
        value = record.get(field)
        if value is None:
            absent_allowed = (kind, field) in _ADDED_LATER
            if not absent_allowed and (field not in _NULLABLE or field not in record):
                raise InvalidInput(f"Line {number}: a {kind} record needs the field {field!r}.")
        elif field in _INTEGER_FIELDS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidInput(f"Line {number}: {field!r} must be an integer (milliseconds).")
        elif field == "models":
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                raise InvalidInput(f"Line {number}: 'models' must be a list of strings.")
        elif field == "enabled":
            if not isinstance(value, bool):
                raise InvalidInput(f"Line {number}: 'enabled' must be true or false.")
        elif not isinstance(value, str):
            raise InvalidInput(f"Line {number}: {field!r} must be a string.")
        checked[field] = value
    return checked


def parse(lines: Iterable[str]) -> list[tuple[str, Record]]:
    """Every record of an export file, checked; one sentence naming the line if one is wrong."""
    return list(read_records(lines))


def read_records(lines: Iterable[str]) -> Iterator[tuple[str, Record]]:
    """The records of an export file one by one, as :func:`parse` checks them.

    Nothing but the current line is held, so a file of any size (long replies are
    megabytes each) can be checked in one pass and imported in another.
    """
    header_seen = False
    workers: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"Line {number} is not valid JSON: {exc.msg}.") from exc
        if not isinstance(value, dict):
            raise InvalidInput(f"Line {number} is not a JSON object.")
        if not header_seen:
            if value.get("format") != FORMAT:
                raise InvalidInput(
                    f"Line {number}: this is not an orchestrator export (its first line must be"
                    f" {json.dumps(HEADER)})."
                )
            if value.get("version") != VERSION:
                raise InvalidInput(
                    f"Line {number}: this export has version {value.get('version')!r}; this"
                    f" orchestrator reads version {VERSION}."
                )
            header_seen = True
            continue
        kind = value.get("type")
        if not isinstance(kind, str) or kind not in FIELDS:
            raise InvalidInput(
                f"Line {number}: unknown record type {kind!r} (expected one of"
                f" {', '.join(FIELDS)})."
            )
        record = _check(number, kind, value)
        if kind == "worker":
            machine = record["machineId"]
            workers[machine] = workers.get(machine, 0) + 1
            if workers[machine] > MAX_WORKERS_PER_MACHINE:
                raise InvalidInput(
                    f"Line {number}: machine {machine} has more than {MAX_WORKERS_PER_MACHINE}"
                    f" workers; a machine can have at most {MAX_WORKERS_PER_MACHINE}."
                )
        yield kind, record
    if not header_seen:
        raise InvalidInput("The file is empty: an export starts with its format line.")


async def import_records(
    records: Iterable[tuple[str, Record]],
    target: Restorer,
    *,
    new_secret: Callable[[], str],
    report: Report,
    total: int | None = None,
) -> Imported:
    """Write checked records to ``target`` in batches; IDs already stored are skipped.

    ``records`` may be read lazily (from the file); ``total`` is how many there are.
    """
    written = skipped = done = 0
    machines: list[tuple[str, MachineToken]] = []
    if total is None:
        total = len(records) if isinstance(records, Sized) else 0
    batch: list[Record] = []
    batch_kind = ""
    batch_chars = 0

    async def flush() -> None:
        nonlocal written, skipped, done, batch, batch_chars
        if not batch:
            return
        secrets: dict[str, str] = {}
        if batch_kind == "machine":
            for record in batch:
                secrets[record["machineId"]] = record["secret"] = new_secret()
        stored = set(await target.restore(batch_kind, batch))
        for record in batch:
            if batch_kind == "machine" and record["machineId"] in stored:
                token = MachineToken(MachineId(record["machineId"]), secrets[record["machineId"]])
                machines.append((record["name"], token))
        written += len(stored)
        skipped += len(batch) - len(stored)
        done += len(batch)
        report(f"Imported {done:,} of {total:,} records ({skipped:,} were there already).")
        batch, batch_chars = [], 0

    for kind, record in records:
        size = len(json.dumps(record, ensure_ascii=False))
        full = len(batch) >= BATCH_RECORDS or batch_chars + size > BATCH_CHARS
        if kind != batch_kind or full:
            await flush()
            batch_kind = kind
        batch.append(dict(record))
        batch_chars += size
    await flush()
    return Imported(written=written, skipped=skipped, machines=machines)


async def write_all(lines: AsyncIterator[str], write: Callable[[str], Awaitable[object]]) -> int:
    """Write each line with a newline; return how many records (lines after the header)."""
    count = -1
    async for text in lines:
        await write(text + "\n")
        count += 1
    return count

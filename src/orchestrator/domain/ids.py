"""Identifiers and the tokens built from them.

IDs are distinct ``NewType``s so mypy refuses a ``WorkerId`` where a
``MachineId`` is expected. Every ID and secret the orchestrator generates is
``<prefix>_<base32/urlsafe characters>``, which :data:`ID_PATTERN` accepts.
"""

from __future__ import annotations

import re
from typing import NewType

import attrs

from orchestrator.domain.errors import InvalidToken

UserId = NewType("UserId", str)
MachineId = NewType("MachineId", str)
WorkerId = NewType("WorkerId", str)
ChatSessionId = NewType("ChatSessionId", str)
MessageId = NewType("MessageId", str)
ChunkId = NewType("ChunkId", str)
CommandId = NewType("CommandId", str)
JobId = NewType("JobId", str)
JobRunId = NewType("JobRunId", str)
PermissionId = NewType("PermissionId", str)
QuestionId = NewType("QuestionId", str)
ApiTokenId = NewType("ApiTokenId", str)

#: Prefixes of generated IDs, so a pasted value says what it is.
PREFIXES = {
    "user": "usr",
    "machine": "mch",
    "worker": "wrk",
    "chat_session": "chs",
    "message": "msg",
    "chunk": "chk",
    "command": "cmd",
    "job": "job",
    "job_run": "run",
    "permission": "prm",
    "question": "qst",
    "api_token": "oat",
    "secret": "sec",
}

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")

MACHINE_TOKEN_FORMAT = "Invalid token format. Expected: <machine_id>:<machine_secret>"  # noqa: S105
WORKER_TOKEN_FORMAT = (
    "Invalid worker token format. Expected: machine_<machine_id>:worker_<worker_id>"  # noqa: S105
)


def is_valid_id(value: str) -> bool:
    """Whether ``value`` has the shape of an orchestrator ID."""
    return ID_PATTERN.fullmatch(value) is not None


def _split_pair(raw: str, message: str) -> tuple[str, str]:
    if not isinstance(raw, str) or raw != raw.strip() or raw.count(":") != 1:
        raise InvalidToken(message)
    left, right = raw.split(":")
    if not (is_valid_id(left) and is_valid_id(right)):
        raise InvalidToken(message)
    return left, right


def hidden(_secret: str) -> str:
    """How a secret shows in a record's repr: never itself, in logs or tracebacks."""
    return "'***'"


@attrs.frozen
class MachineToken:
    """The credential a machine process presents: ``<machine_id>:<machine_secret>``."""

    machine_id: MachineId
    secret: str = attrs.field(repr=hidden)

    @classmethod
    def parse(cls, raw: str) -> MachineToken:
        """Parse a pasted token, refusing anything but exactly ``id:secret``."""
        machine_id, secret = _split_pair(raw, MACHINE_TOKEN_FORMAT)
        return cls(MachineId(machine_id), secret)

    def __str__(self) -> str:
        return f"{self.machine_id}:{self.secret}"


@attrs.frozen
class WorkerToken:
    """Lets a machine register a worker: ``machine_<machine_id>:worker_<worker_id>``."""

    machine_id: MachineId
    worker_id: WorkerId

    @classmethod
    def parse(cls, raw: str) -> WorkerToken:
        """Parse a worker token from the UI's "Create worker token" dialog."""
        left, right = _split_pair(raw, WORKER_TOKEN_FORMAT)
        if not (left.startswith("machine_") and right.startswith("worker_")):
            raise InvalidToken(WORKER_TOKEN_FORMAT)
        machine_id, worker_id = left.removeprefix("machine_"), right.removeprefix("worker_")
        if not (machine_id and worker_id):
            raise InvalidToken(WORKER_TOKEN_FORMAT)
        return cls(MachineId(machine_id), WorkerId(worker_id))

    def __str__(self) -> str:
        return f"machine_{self.machine_id}:worker_{self.worker_id}"

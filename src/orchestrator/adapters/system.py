"""The real clock, ID generator and argon2 hasher."""

from __future__ import annotations

import os
import secrets
import sys
from datetime import UTC, datetime

import argon2
import attrs

from orchestrator.domain.ids import PREFIXES

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    """IDs like ``mch_k3v9...`` (96 random bits) and ``sec_...`` secrets (256 bits)."""

    def new_id(self, kind: str) -> str:
        body = "".join(secrets.choice(_ALPHABET) for _ in range(20))
        return f"{PREFIXES[kind]}_{body}"

    def new_secret(self) -> str:
        return f"{PREFIXES['secret']}_{secrets.token_urlsafe(32)}"


@attrs.define
class Argon2Hasher:
    """argon2id; ``fast=True`` lowers the cost for tests only."""

    fast: bool = False
    _hasher: argon2.PasswordHasher = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.fast:
            self._hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        else:
            self._hasher = argon2.PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


#: Runs on Linux between fork and the child program: the kernel kills the child when
#: the machine process dies, even by SIGKILL, so a crash leaves no orphan (opencode, git).
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)  # the parent died already\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def launch_command(arguments: list[str]) -> list[str]:
    """``arguments`` wrapped so the process dies with this one (Linux), else unchanged."""
    if not sys.platform.startswith("linux"):
        return arguments
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *arguments]

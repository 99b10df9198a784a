"""The real clock, ID generator and argon2 hasher."""

from __future__ import annotations

import secrets
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

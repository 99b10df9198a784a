"""Limits on guessing, keyed on what is attacked: one machine, one account, and all of them.

Failed attempts count against their target (a machine id, an account) and
against a total for the whole server; attempts in flight count too, and a
success is forgiven. A credential that succeeded recently (a machine token, or
a browser's device cookie after it signed in) is trusted: it passes even while
its target is locked, so others' guessing — from the same NAT or proxy address
or anywhere else — never locks out the machine or the person who holds it.
Trust only skips the limit, never the check of the credential itself, and one
failure with a trusted proof ends the trust.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final, TypeVar

import attrs
from aiohttp import web

from orchestrator.domain.errors import AuthenticationFailed, RateLimited
from orchestrator.domain.ports import Clock
from orchestrator.entrypoints.web.auth import RateLimiter

T = TypeVar("T")

DEVICE_COOKIE: Final = "orchestrator_device"
DEVICE_MAX_AGE: Final = timedelta(days=365)
_TOTAL: Final = "*"


def _digest(proof: str) -> str:
    return hashlib.sha256(proof.encode()).hexdigest()


@attrs.define
class AttemptGuard:
    """Counts failed attempts per target and in total, and remembers proofs that succeeded."""

    per_target: RateLimiter
    total: RateLimiter
    #: Count untrusted attempts while they run (sign-in), not only once they failed.
    count_in_flight: bool = True
    max_trusted: int = 10_000
    _trusted: collections.OrderedDict[tuple[str, str], None] = attrs.field(
        factory=collections.OrderedDict
    )

    @classmethod
    def create(
        cls, per_target: int, total: int, clock: Clock, *, count_in_flight: bool = True
    ) -> AttemptGuard:
        """A guard allowing ``per_target`` failures per target and ``total`` in all, a minute."""
        return cls(RateLimiter(per_target, clock), RateLimiter(total, clock), count_in_flight)

    def trusts(self, target: str, proof: str | None) -> bool:
        """Whether ``proof`` succeeded for ``target`` recently."""
        return proof is not None and (target, _digest(proof)) in self._trusted

    def trust(self, target: str, proof: str) -> None:
        """Remember that ``proof`` succeeded for ``target`` (bounded; the oldest goes first)."""
        key = (target, _digest(proof))
        self._trusted[key] = None
        self._trusted.move_to_end(key)
        while len(self._trusted) > self.max_trusted:
            self._trusted.popitem(last=False)

    async def attempt(self, target: str, proof: str | None, check: Callable[[], Awaitable[T]]) -> T:
        """Run ``check`` under the limits; it raises AuthenticationFailed on a wrong credential.

        On success, ``proof`` (the credential, or the browser's device cookie) is trusted.
        """
        trusted = self.trusts(target, proof)
        if not trusted:
            self.per_target.check(target)
            self.total.check(_TOTAL)
        # Untrusted attempts in flight count too, so a burst of guesses sent at once is
        # limited like guesses sent one after the other (each costs an argon2 check).
        in_flight = self.count_in_flight and not trusted
        if in_flight:
            self._record(target)
        try:
            result = await check()
        except RateLimited:
            if in_flight:
                self._forgive(target)
            raise
        except AuthenticationFailed:
            if proof is not None:
                self._trusted.pop((target, _digest(proof)), None)
            if not in_flight:
                self._record(target)
            raise
        except BaseException:
            if in_flight:
                self._forgive(target)  # not a wrong credential: the backend failed, or bad input
            raise
        if in_flight:
            self._forgive(target)
        if proof is not None:
            self.trust(target, proof)
        return result

    def _record(self, target: str) -> None:
        self.per_target.record(target)
        self.total.record(_TOTAL)

    def _forgive(self, target: str) -> None:
        self.per_target.forgive(target)
        self.total.forgive(_TOTAL)


def account_target(username: str) -> str:
    """The key sign-in attempts on ``username`` count against."""
    return "account:" + username.casefold()


def device_proof(request: web.Request) -> str | None:
    """The browser's device cookie, if it has one of a sane length."""
    device = request.cookies.get(DEVICE_COOKIE, "")
    return device if 0 < len(device) <= 128 and device.isascii() else None


def trust_device(
    guard: AttemptGuard,
    request: web.Request,
    response: web.StreamResponse,
    username: str,
    *,
    secure: bool,
) -> None:
    """After a successful sign-in: trust this browser for ``username``, giving it a cookie."""
    if device_proof(request) is not None:
        return  # already trusted by the successful attempt
    device = secrets.token_urlsafe(32)
    response.set_cookie(
        DEVICE_COOKIE,
        device,
        max_age=int(DEVICE_MAX_AGE.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=secure or None,
    )
    guard.trust(account_target(username), device)

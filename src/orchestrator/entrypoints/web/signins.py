"""Server-side sign-ins: a session cookie signs its holder in only while its sign-in exists.

The encrypted cookie carries a sign-in id; the backend keeps the ids that are
still valid. Signing out, "sign out everywhere" and a new password delete
them, so a copied cookie stops working at the next request. Confirmed sign-ins
are cached for a few seconds (a Convex round trip per request would be slow);
ending a user's sign-ins here invalidates that user's cache at once, so in this
process revocation takes effect from the very next request.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

import attrs

from orchestrator.domain.ids import UserId
from orchestrator.domain.ports import AccountBackend, Clock


@attrs.define
class SignIns:
    """The record of signed-in browsers, with a brief per-process cache of confirmed ones."""

    accounts: AccountBackend
    clock: Clock
    ttl: timedelta = timedelta(seconds=5)
    max_cached: int = 10_000
    _confirmed: dict[tuple[UserId, str], tuple[datetime, int]] = attrs.field(factory=dict)
    #: Bumped whenever a user's sign-ins end: older cache entries and lookups do not count.
    _generation: dict[UserId, int] = attrs.field(factory=dict)

    async def start(self, user_id: UserId) -> str:
        """Record a new sign-in of ``user_id``; its id goes into the session cookie."""
        sign_in_id = "sgn_" + secrets.token_urlsafe(24)
        await self.accounts.add_sign_in(user_id, sign_in_id)
        return sign_in_id

    async def is_active(self, user_id: UserId, sign_in_id: str) -> bool:
        """Whether the sign-in still exists (from the cache when confirmed moments ago)."""
        key = (user_id, sign_in_id)
        generation = self._generation.get(user_id, 0)
        cached = self._confirmed.get(key)
        if cached is not None and cached[1] == generation and cached[0] > self.clock.now():
            return True
        active = await self.accounts.has_sign_in(user_id, sign_in_id)
        # A sign-out that finished while we asked wins: only cache an answer still current.
        if active and self._generation.get(user_id, 0) == generation:
            if len(self._confirmed) >= self.max_cached:
                self._confirmed.clear()
            self._confirmed[key] = (self.clock.now() + self.ttl, generation)
        else:
            self._confirmed.pop(key, None)
        return active

    async def end(self, user_id: UserId, sign_in_id: str) -> None:
        """End one sign-in (signing out)."""
        await self.accounts.end_sign_in(user_id, sign_in_id)
        self._forget(user_id)

    async def end_others(self, user_id: UserId, keep: str | None) -> int:
        """End every sign-in of ``user_id`` but ``keep``; how many ended."""
        ended = await self.accounts.end_other_sign_ins(user_id, keep)
        self._forget(user_id)
        return ended

    def _forget(self, user_id: UserId) -> None:
        self._generation[user_id] = self._generation.get(user_id, 0) + 1
        for key in [key for key in self._confirmed if key[0] == user_id]:
            del self._confirmed[key]

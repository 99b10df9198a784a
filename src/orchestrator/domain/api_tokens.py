"""User API tokens: how a script signs in to the user API without a browser.

A token is ``oat_<id>:sec_<secret>``: the ``oat_`` ("orchestrator API token")
prefix makes a leaked one recognisable, the id finds the stored record and the
secret (32 random bytes) proves it. Backends store only the SHA-256 of the
secret. A slow hash (argon2) guards *guessable* secrets such as passwords; a
uniformly random 256-bit secret cannot be guessed whatever one hash costs, and
argon2 on every API request would cost ~50 ms of CPU each, so a fast hash is
as safe here and keeps each request cheap (the same reasoning as machine
secrets on Convex, ``backend_convex/convex/lib/auth.ts``).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Final

import attrs

from orchestrator.domain.errors import AuthenticationFailed, InvalidToken
from orchestrator.domain.ids import ApiTokenId, UserId, _split_pair, hidden

API_TOKEN_PREFIX: Final = "oat_"  # noqa: S105 - a prefix, not a password
MAX_API_TOKENS_PER_USER: Final = 50
#: ``last_used_at`` is written at most this often per token, so a busy script costs reads only.
LAST_USED_RESOLUTION: Final = timedelta(minutes=1)

API_TOKEN_FORMAT: Final = (
    "Invalid API token format. Expected: oat_<id>:sec_<secret>, as shown when it was created."  # noqa: S105
)
WRONG_API_TOKEN: Final = "This API token is wrong or was revoked. Create a new one under Settings."  # noqa: S105
NO_API_TOKEN: Final = "No such API token."  # noqa: S105
TOO_MANY_API_TOKENS: Final = (
    f"You have {MAX_API_TOKENS_PER_USER} API tokens. Revoke one before creating another."
)


@attrs.frozen
class ApiToken:
    """A user's API token as listed: never its secret."""

    token_id: ApiTokenId
    user_id: UserId
    name: str
    created_at: datetime
    last_used_at: datetime | None = None


@attrs.frozen
class ApiCredential:
    """What a script presents: ``oat_<id>:sec_<secret>``."""

    token_id: ApiTokenId
    secret: str = attrs.field(repr=hidden)

    @classmethod
    def parse(cls, raw: str) -> ApiCredential:
        """Parse a presented token, refusing anything but ``oat_<id>:sec_<secret>``."""
        token_id, secret = _split_pair(raw, API_TOKEN_FORMAT)
        if not (token_id.startswith(API_TOKEN_PREFIX) and secret.startswith("sec_")):
            raise InvalidToken(API_TOKEN_FORMAT)
        return cls(ApiTokenId(token_id), secret)

    @property
    def secret_hash(self) -> str:
        """What a backend stores and compares: the hex SHA-256 of the secret."""
        return hash_api_secret(self.secret)

    def __str__(self) -> str:
        return f"{self.token_id}:{self.secret}"


def hash_api_secret(secret: str) -> str:
    """Hex SHA-256 of an API token's secret (fast on purpose: see the module docstring)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_api_secret(stored_hash: str | None, credential: ApiCredential) -> None:
    """Raise AuthenticationFailed unless ``credential`` matches the stored hash.

    ``None`` (no such token, or another user's) fails the same way, after the same work.
    """
    given = credential.secret_hash
    if not hmac.compare_digest(given, stored_hash or "0" * len(given)) or stored_hash is None:
        raise AuthenticationFailed(WRONG_API_TOKEN)


def needs_last_used(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use at ``now`` should be written (at most once per LAST_USED_RESOLUTION)."""
    return last_used_at is None or now - last_used_at >= LAST_USED_RESOLUTION

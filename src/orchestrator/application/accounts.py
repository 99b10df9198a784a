"""Use cases for accounts of the web app."""

from __future__ import annotations

import re

import anyio

from orchestrator.domain.errors import AuthenticationFailed, InvalidInput
from orchestrator.domain.ids import UserId
from orchestrator.domain.model import User
from orchestrator.domain.ports import AccountBackend, SecretHasher

USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


def validate_username(username: str) -> str:
    """Return ``username`` if it is 1-64 letters, digits, ``.``, ``_``, ``@`` or ``-``."""
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidInput(
            "A username is 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit."
        )
    return username


def validate_password(password: str) -> str:
    """Return ``password`` if its length is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return check_password_length(password)


async def _new_hash(
    hasher: SecretHasher, password: str, limiter: anyio.CapacityLimiter | None
) -> str:
    """The argon2 hash of an acceptable new password, computed in a thread under ``limiter``."""
    validate_password(password)
    return await anyio.to_thread.run_sync(hasher.hash, password, limiter=limiter)


async def create_user(
    accounts: AccountBackend,
    hasher: SecretHasher,
    username: str,
    password: str,
    *,
    limiter: anyio.CapacityLimiter | None = None,
) -> User:
    """Create an account with an argon2-hashed password (hashed in a thread under ``limiter``)."""
    validate_username(username)
    return await accounts.create_user(username, await _new_hash(hasher, password, limiter))


async def change_password(
    accounts: AccountBackend,
    hasher: SecretHasher,
    user_id: UserId,
    new_password: str,
    *,
    limiter: anyio.CapacityLimiter | None = None,
) -> None:
    """Give the account a new argon2-hashed password (the caller checked the current one)."""
    await accounts.set_password_hash(user_id, await _new_hash(hasher, new_password, limiter))


def check_password_length(password: str) -> str:
    """Return ``password`` unless it is too long to be anyone's (refused before any lookup)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"A password must be at most {MAX_PASSWORD_LENGTH} characters.")
    return password


async def verify_password(
    accounts: AccountBackend,
    hasher: SecretHasher,
    username: str,
    password: str,
    *,
    limiter: anyio.CapacityLimiter | None = None,
) -> User:
    """The account if the password is right; the same error for any wrong credential.

    argon2 runs in a worker thread under ``limiter`` (each run holds ~64 MiB).
    """
    # Refused before the lookup, so the time taken never depends on whether the account exists.
    check_password_length(password)
    found = await accounts.find_user(username) if USERNAME_PATTERN.fullmatch(username) else None
    if found is None:
        # The same cost as a real check: the time taken does not tell which accounts exist.
        await anyio.to_thread.run_sync(hasher.hash, password, limiter=limiter)
        raise AuthenticationFailed("Wrong username or password.")
    user, password_hash = found
    if not await anyio.to_thread.run_sync(hasher.verify, password_hash, password, limiter=limiter):
        raise AuthenticationFailed("Wrong username or password.")
    return user

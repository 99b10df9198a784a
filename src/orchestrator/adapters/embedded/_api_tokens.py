"""User API tokens on SQLite: one row per token, the secret's SHA-256 only.

The rules come from ``domain.api_tokens``; a use is written back at most once
a minute per token (``needs_last_used``), so a busy script costs reads only.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from orchestrator.adapters.embedded import _rows as rows
from orchestrator.adapters.embedded._machine_side import MachineSide
from orchestrator.adapters.embedded._store import Tx
from orchestrator.adapters.records import from_row
from orchestrator.domain.api_tokens import (
    MAX_API_TOKENS_PER_USER,
    NO_API_TOKEN,
    TOO_MANY_API_TOKENS,
    ApiCredential,
    ApiToken,
    check_api_secret,
    needs_last_used,
)
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import ApiTokenId, UserId
from orchestrator.domain.model import User, validate_name

_token = partial(from_row, cls=ApiToken)


class ApiTokenSide(MachineSide):
    """The :class:`~orchestrator.domain.ports.ApiTokenBackend` half."""

    if TYPE_CHECKING:  # provided by SQLiteBackend

        async def _user(self, tx: Tx, user_id: str) -> User: ...

    async def create_api_token(self, user: UserId, name: str) -> tuple[ApiToken, str]:
        cleaned = validate_name(name, "Token name")
        credential = ApiCredential(
            ApiTokenId(self._ids.new_id("api_token")), self._ids.new_secret()
        )
        async with self._store.transaction(write=True) as tx:
            await self._user(tx, user)
            row = await tx.one("SELECT count(*) FROM api_tokens WHERE user_id = ?", user)
            if row is not None and int(row[0]) >= MAX_API_TOKENS_PER_USER:
                raise Conflict(TOO_MANY_API_TOKENS)
            await tx.run(
                "INSERT INTO api_tokens (token_id, user_id, name, secret_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                credential.token_id,
                user,
                cleaned,
                credential.secret_hash,
                self._now(),
            )
            created = await tx.one(
                "SELECT * FROM api_tokens WHERE token_id = ?", credential.token_id
            )
        assert created is not None  # written in this transaction
        return _token(created), str(credential)

    async def list_api_tokens(self, user: UserId) -> list[ApiToken]:
        async with self._store.transaction() as tx:
            found = await tx.all(
                "SELECT * FROM api_tokens WHERE user_id = ? ORDER BY created_at, rowid", user
            )
        return [_token(row) for row in found]

    async def revoke_api_token(self, user: UserId, token_id: ApiTokenId) -> None:
        async with self._store.transaction(write=True) as tx:
            deleted = await tx.run(
                "DELETE FROM api_tokens WHERE token_id = ? AND user_id = ?", token_id, user
            )
        if deleted == 0:
            raise NotFound(NO_API_TOKEN)

    async def authenticate_api_token(self, token: str) -> UserId:
        credential = ApiCredential.parse(token)
        async with self._store.transaction() as tx:
            row = await tx.one("SELECT * FROM api_tokens WHERE token_id = ?", credential.token_id)
        check_api_secret(None if row is None else row["secret_hash"], credential)
        assert row is not None  # check_api_secret refused a missing token
        found = _token(row)
        now = self._now()
        if needs_last_used(found.last_used_at, rows.from_ms(now)):
            async with self._store.transaction(write=True) as tx:
                await tx.run(
                    "UPDATE api_tokens SET last_used_at = ? WHERE token_id = ?",
                    now,
                    found.token_id,
                )
        return found.user_id

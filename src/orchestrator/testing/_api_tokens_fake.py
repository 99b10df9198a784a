"""User API tokens for the ``InMemoryBackend``: records and hashes in dicts.

The rules (token shape, hash, last-use resolution) come from
``domain.api_tokens``, as in the SQLite and Convex backends; the contract suite
in ``tests/contract/test_api_token_contract.py`` holds all of them to it.
"""

from __future__ import annotations

import attrs

from orchestrator.domain import api_tokens as token_rules
from orchestrator.domain.api_tokens import ApiCredential, ApiToken
from orchestrator.domain.errors import Conflict, NotFound
from orchestrator.domain.ids import ApiTokenId, UserId
from orchestrator.domain.model import validate_name
from orchestrator.testing._state_fake import FakeState


class ApiTokenFake(FakeState):
    """The :class:`~orchestrator.domain.ports.ApiTokenBackend`, in dicts."""

    async def create_api_token(self, user: UserId, name: str) -> tuple[ApiToken, str]:
        cleaned = validate_name(name, "Token name")
        await self.get_user(user)
        if (
            sum(t.user_id == user for t in self.api_tokens.values())
            >= token_rules.MAX_API_TOKENS_PER_USER
        ):
            raise Conflict(token_rules.TOO_MANY_API_TOKENS)
        credential = ApiCredential(ApiTokenId(self.ids.new_id("api_token")), self.ids.new_secret())
        token = ApiToken(credential.token_id, user, cleaned, self._now())
        self.api_tokens[token.token_id] = token
        self.api_token_hashes[token.token_id] = token_rules.hash_api_secret(credential.secret)
        return token, str(credential)

    async def list_api_tokens(self, user: UserId) -> list[ApiToken]:
        return [t for t in self.api_tokens.values() if t.user_id == user]

    async def revoke_api_token(self, user: UserId, token_id: ApiTokenId) -> None:
        token = self.api_tokens.get(token_id)
        if token is None or token.user_id != user:
            raise NotFound(token_rules.NO_API_TOKEN)
        del self.api_tokens[token_id]
        del self.api_token_hashes[token_id]

    async def authenticate_api_token(self, token: str) -> UserId:
        credential = ApiCredential.parse(token)
        token_rules.check_api_secret(self.api_token_hashes.get(credential.token_id), credential)
        found = self.api_tokens[credential.token_id]
        now = self._now()
        if token_rules.needs_last_used(found.last_used_at, now):
            self.api_tokens[found.token_id] = attrs.evolve(found, last_used_at=now)
        return found.user_id

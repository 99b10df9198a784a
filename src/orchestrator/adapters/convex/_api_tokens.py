"""User API tokens on Convex (``backend_convex/convex/apiTokens.ts``).

The secret is drawn and hashed here, by the web server; the deployment stores
and compares the hash only, so a token's text never reaches it.
"""

from __future__ import annotations

from functools import partial

from orchestrator.adapters.convex._calls import ConvexCalls
from orchestrator.adapters.records import from_document
from orchestrator.adapters.system import RandomIds
from orchestrator.domain.api_tokens import ApiCredential, ApiToken, hash_api_secret
from orchestrator.domain.ids import ApiTokenId, UserId

_token = partial(from_document, cls=ApiToken)


class ConvexApiTokenSide(ConvexCalls):
    """Implements :class:`~orchestrator.domain.ports.ApiTokenBackend` on Convex."""

    async def create_api_token(self, user: UserId, name: str) -> tuple[ApiToken, str]:
        secret = RandomIds().new_secret()
        args = self._server(userId=user, name=name, secretHash=hash_api_secret(secret))
        token = _token(await self._call("mutation", "apiTokens:create", args))
        return token, str(ApiCredential(token.token_id, secret))

    async def list_api_tokens(self, user: UserId) -> list[ApiToken]:
        found = await self._call("query", "apiTokens:list", self._server(userId=user))
        return [_token(raw) for raw in found]

    async def revoke_api_token(self, user: UserId, token_id: ApiTokenId) -> None:
        args = self._server(userId=user, tokenId=token_id)
        await self._call("mutation", "apiTokens:revoke", args)

    async def authenticate_api_token(self, token: str) -> UserId:
        credential = ApiCredential.parse(token)
        args = self._server(tokenId=credential.token_id, secretHash=credential.secret_hash)
        return UserId(await self._call("mutation", "apiTokens:authenticate", args))

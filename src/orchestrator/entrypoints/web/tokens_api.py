"""User API tokens: managed by a signed-in browser, presented by scripts as a bearer token.

``POST /api/tokens {name}`` answers ``{"token": <record>, "secret": "oat_…:sec_…"}``
(the secret is shown this once), ``GET /api/tokens`` lists them and
``DELETE /api/tokens/{token_id}`` revokes one. These need the cookie and its
CSRF token like every other account setting; :func:`bearer_user` signs a
script's request in (see :mod:`.auth`).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from orchestrator.adapters.wire import converter
from orchestrator.domain.api_tokens import ApiCredential
from orchestrator.domain.errors import AuthenticationFailed
from orchestrator.domain.ids import UserId
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import API_TOKEN, read_body, record_response
from orchestrator.entrypoints.web.state import BACKEND, TOKEN_LIMITER

BEARER_FORMAT: Final = "Send the API token as: Authorization: Bearer oat_<id>:sec_<secret>."


async def bearer_user(request: web.Request, authorization: str) -> UserId:
    """The user whose API token the ``Authorization`` header carries, under the token limits."""
    scheme, _, raw = authorization.partition(" ")
    if scheme.casefold() != "bearer" or not raw:  # the scheme is case-insensitive (RFC 9110)
        raise AuthenticationFailed(BEARER_FORMAT)
    credential = ApiCredential.parse(raw)
    backend = request.app[BACKEND]
    return await request.app[TOKEN_LIMITER].attempt(
        "api_token:" + credential.token_id, raw, lambda: backend.authenticate_api_token(raw)
    )


async def create_token(request: web.Request) -> web.Response:
    """``POST /api/tokens {name}``: the new token's record and its secret, shown once."""
    user = require_user(request)
    body = await read_body(request)
    token, secret = await request.app[BACKEND].create_api_token(user, body.string("name"))
    return web.json_response({"token": converter.unstructure(token), "secret": secret}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    """``GET /api/tokens``: the user's tokens, oldest first, without secrets."""
    found = await request.app[BACKEND].list_api_tokens(require_user(request))
    return record_response("tokens", found)


async def revoke_token(request: web.Request) -> web.Response:
    """``DELETE /api/tokens/{token_id}``: the token stops working at once."""
    token_id = API_TOKEN.of(request)
    await request.app[BACKEND].revoke_api_token(require_user(request), token_id)
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the API token routes."""
    router.add_post("/api/tokens", create_token)
    router.add_get("/api/tokens", list_tokens)
    router.add_delete("/api/tokens/{token_id}", revoke_token)

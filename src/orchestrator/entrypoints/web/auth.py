"""Who is asking: browser sessions with CSRF tokens, and rate limits on guessing.

A session is an encrypted, authenticated cookie (Fernet, key kept in
``<data_dir>/secret_key``); once signed in it carries a sign-in id that must
still exist on the server (:mod:`.signins`), so signing out ends it for good
while a restart signs nobody out. Every state-changing request from a browser must echo the
session's CSRF token in ``X-CSRF-Token`` (or the ``csrf_token`` form field).

A script calls the same ``/api/`` routes with ``Authorization: Bearer <user API
token>`` instead of a cookie: such a request is its own proof, so it needs no CSRF
token (CSRF protects the cookie a browser sends by itself), and it may not manage
the account (:data:`BROWSER_ONLY`).
"""

from __future__ import annotations

import collections
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography.fernet import Fernet, InvalidToken

from orchestrator.adapters.wire import MACHINE_API_PREFIX
from orchestrator.domain.errors import (
    AuthenticationFailed,
    InvalidInput,
    PermissionDenied,
    RateLimited,
)
from orchestrator.domain.ids import UserId
from orchestrator.domain.ports import Clock
from orchestrator.entrypoints.web.errors import is_api
from orchestrator.entrypoints.web.parsing import read_form
from orchestrator.entrypoints.web.signins import SignIns

SESSION_COOKIE: Final = "orchestrator_session"
SESSION_MAX_AGE: Final = timedelta(days=14)
CSRF_HEADER: Final = "X-CSRF-Token"
CSRF_FIELD: Final = "csrf_token"
CSRF_MESSAGE: Final = "Missing or invalid CSRF token. Reload the page and try again."
SIGN_IN_FIRST: Final = "Sign in first."
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: A JSON sign-in has no session yet; JSON's content type already needs a CORS preflight.
CSRF_EXEMPT: Final = frozenset({"/api/login"})


@attrs.frozen
class Session:
    """What the session cookie holds: a CSRF token, and the user and sign-in once signed in."""

    csrf_token: str
    user_id: UserId | None = None
    sign_in_id: str | None = None

    @classmethod
    def fresh(cls, user_id: UserId | None = None, sign_in_id: str | None = None) -> Session:
        """A new session with a new CSRF token (new on every sign-in and sign-out)."""
        return cls(secrets.token_urlsafe(32), user_id, sign_in_id)


SESSION: Final[web.RequestKey[Session | None]] = web.RequestKey("session")
#: Checks a bearer API token (the ``Authorization`` header's value): whose it is.
BearerCheck = Callable[[web.Request, str], Awaitable[UserId]]
#: Account management stays with a signed-in browser; an API token cannot reach it.
BROWSER_ONLY: Final = ("/api/tokens", "/api/password", "/api/logout", "/api/login")
BROWSER_ONLY_MESSAGE: Final = (
    "An API token cannot manage the account. Sign in with a browser to do this."
)


def load_secret_key(data_dir: Path) -> bytes:
    """The cookie key from ``data_dir/secret_key``, created (mode 0600) on first use."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / "secret_key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError as exc:
            raise InvalidInput(
                f"The secret key in {path} is damaged. Delete the file to sign everyone out."
            ) from exc
        return key
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as file:
        file.write(key)
    return key


@attrs.frozen
class SessionCodec:
    """Reads and writes the session cookie."""

    fernet: Fernet
    clock: Clock
    secure: bool

    def load(self, request: web.Request) -> Session | None:
        """The session in the request's cookie, or None if absent, forged or expired."""
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        now = int(self.clock.now().timestamp())
        try:
            data = json.loads(
                self.fernet.decrypt_at_time(raw, int(SESSION_MAX_AGE.total_seconds()), now)
            )
            csrf, user, sign_in = data["c"], data["u"], data.get("s")
        except (InvalidToken, ValueError, KeyError, TypeError):
            return None
        if not isinstance(csrf, str):
            return None
        if not (isinstance(user, str) and user and isinstance(sign_in, str) and sign_in):
            return Session(csrf)  # a cookie from before sign-ins were stored signs nobody in
        return Session(csrf, UserId(user), sign_in)

    def save(self, response: web.StreamResponse, session: Session) -> None:
        """Set ``session`` as the response's cookie."""
        payload = json.dumps(
            {"c": session.csrf_token, "u": session.user_id, "s": session.sign_in_id}
        ).encode()
        token = self.fernet.encrypt_at_time(payload, int(self.clock.now().timestamp()))
        response.set_cookie(
            SESSION_COOKIE,
            token.decode(),
            max_age=int(SESSION_MAX_AGE.total_seconds()),
            httponly=True,
            samesite="Lax",
            secure=self.secure or None,
        )

    def clear(self, response: web.StreamResponse) -> None:
        """Remove the session cookie."""
        response.del_cookie(SESSION_COOKIE, samesite="Lax", httponly=True)


@attrs.define
class RateLimiter:
    """A sliding one-window count of attempts per key (a machine, an account), kept in memory."""

    limit: int
    clock: Clock
    window: timedelta = timedelta(minutes=1)
    max_addresses: int = 10_000
    _hits: dict[str, collections.deque[datetime]] = attrs.field(factory=dict)

    def check(self, address: str) -> None:
        """Raise RateLimited if ``address`` used up its attempts in the window."""
        hits = self._hits.get(address)
        if hits is None:
            return
        cutoff = self.clock.now() - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        if not hits:
            del self._hits[address]
        elif len(hits) >= self.limit:
            raise RateLimited("Too many attempts. Wait a minute and try again.")

    def record(self, address: str) -> None:
        """Count one attempt from ``address``."""
        if address not in self._hits and len(self._hits) >= self.max_addresses:
            for stale in list(self._hits):
                self.check(stale)
            if len(self._hits) >= self.max_addresses:
                # Memory stays bounded under a flood; the oldest address loses its history.
                del self._hits[next(iter(self._hits))]
        self._hits.setdefault(address, collections.deque()).append(self.clock.now())

    def forgive(self, address: str) -> None:
        """Take back the latest attempt counted for ``address`` (it was not a failure)."""
        if hits := self._hits.get(address):
            hits.pop()

    def hit(self, address: str) -> None:
        """Check and count one attempt."""
        self.check(address)
        self.record(address)


def current_session(request: web.Request) -> Session | None:
    """The request's session, if its cookie was valid."""
    return request.get(SESSION)


def require_user(request: web.Request) -> UserId:
    """The signed-in user, or 401."""
    session = current_session(request)
    if session is None or session.user_id is None:
        raise AuthenticationFailed(SIGN_IN_FIRST)
    return session.user_id


async def _submitted_csrf(request: web.Request) -> str:
    if header := request.headers.get(CSRF_HEADER):
        return header
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return (await read_form(request)).get(CSRF_FIELD, "")
    return ""


def _browser_only(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in BROWSER_ONLY)


def session_middleware(
    codec: SessionCodec, sign_ins: SignIns, bearer: BearerCheck | None = None
) -> Middleware:
    """Load the session; on state-changing browser requests, demand sign-in and CSRF.

    An API request with an ``Authorization`` header is signed in by ``bearer`` alone.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        machine_api = request.path.startswith(MACHINE_API_PREFIX + "/")
        authorization = request.headers.get("Authorization", "")
        # Only a Bearer scheme: a reverse proxy's Basic auth reaches the cookie path as before.
        by_token = authorization.partition(" ")[0].casefold() == "bearer"
        if bearer and by_token and is_api(request) and not machine_api:
            if _browser_only(request.path):
                raise PermissionDenied(BROWSER_ONLY_MESSAGE)
            user_id = await bearer(request, authorization)
            request[SESSION] = Session("", user_id)  # no CSRF token: no cookie to protect
            return await handler(request)
        session = codec.load(request)
        if (
            session
            and session.user_id
            and session.sign_in_id
            and not await sign_ins.is_active(session.user_id, session.sign_in_id)
        ):
            session = Session(session.csrf_token)  # signed out (here or everywhere)
        request[SESSION] = session
        if request.method in UNSAFE_METHODS and not machine_api and request.path not in CSRF_EXEMPT:
            if is_api(request):
                require_user(request)
            submitted = await _submitted_csrf(request)
            expected = session.csrf_token if session else ""
            # Header bytes that are not UTF-8 arrive as surrogates: compare them, never crash.
            given = submitted.encode("utf-8", "surrogateescape")
            if not (expected and hmac.compare_digest(given, expected.encode())):
                raise PermissionDenied(CSRF_MESSAGE)
        return await handler(request)

    return middleware

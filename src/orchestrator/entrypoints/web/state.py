"""What the web app keeps between requests, under typed application keys."""

from __future__ import annotations

import asyncio
import hmac
from typing import Final
from urllib.parse import urlencode

import anyio
import attrs
from aiohttp import web

from orchestrator.application.live import LiveRelay
from orchestrator.domain.ports import Backend, Clock, SecretHasher
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web.auth import SessionCodec
from orchestrator.entrypoints.web.limits import AttemptGuard
from orchestrator.entrypoints.web.signins import SignIns


@attrs.define
class SetupState:
    """The one-time token that lets the first visitor create the first account."""

    token: str | None = None

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the current setup token (constant-time)."""
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )


BACKEND: Final = web.AppKey("backend", Backend)
HASHER: Final = web.AppKey("hasher", SecretHasher)
CLOCK: Final = web.AppKey("clock", Clock)
SETTINGS: Final = web.AppKey("settings", ServerSettings)
SESSIONS: Final = web.AppKey("sessions", SessionCodec)
SIGN_INS: Final = web.AppKey("sign_ins", SignIns)
#: Sign-in attempts, per account and in total.
LOGIN_LIMITER: Final = web.AppKey("login_limiter", AttemptGuard)
#: Machine token checks, per machine and in total.
TOKEN_LIMITER: Final = web.AppKey("token_limiter", AttemptGuard)
SETUP: Final = web.AppKey("setup", SetupState)
#: Password hashing runs in threads, at most this many at once (argon2 holds ~64 MiB each).
HASHING: Final = web.AppKey("hashing", anyio.CapacityLimiter)
#: Body limits of routes that accept more than ``max_body_bytes``, by route name.
BODY_LIMITS: Final[web.AppKey[dict[str, int]]] = web.AppKey("body_limits")
#: Seconds between SSE keepalive comments.
KEEPALIVE: Final = web.AppKey("keepalive", float)
#: Tasks serving SSE and WebSocket streams, cancelled when the server shuts down.
STREAMS: Final[web.AppKey[set[asyncio.Task[object]]]] = web.AppKey("streams")


def setup_link(app: web.Application, public_url: str | None = None) -> str | None:
    """The first-run link ``<public_url>/setup?token=...``, or None once an account exists.

    Known once the app has started (after ``AppRunner.setup()``); ``public_url``
    defaults to the settings' one.
    """
    token = app[SETUP].token
    if token is None:
        return None
    base = (public_url or app[SETTINGS].public_url).rstrip("/")
    return f"{base}/setup?{urlencode({'token': token})}"


#: The live relay of machine events (set when the backend stores numbered events).
LIVE: Final = web.AppKey("live", LiveRelay)

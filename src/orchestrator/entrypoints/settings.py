"""Configuration of the server and the machine process, from flags and environment."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

import attrs

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"


def default_data_dir() -> Path:
    """``$ORCHESTRATOR_DATA_DIR``, else ``$XDG_DATA_HOME/orchestrator``, else ``~/.local/share``."""
    if env := os.environ.get("ORCHESTRATOR_DATA_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "orchestrator"


def default_push_contact() -> str:
    """``$ORCHESTRATOR_PUSH_CONTACT`` (a ``mailto:`` or ``https:`` URL), else a local address."""
    return os.environ.get("ORCHESTRATOR_PUSH_CONTACT") or "mailto:admin@localhost"


def push_loopback_allowed() -> bool:
    """Whether ``$ORCHESTRATOR_PUSH_ALLOW_LOOPBACK_HTTP`` is ``1`` (tests only)."""
    return os.environ.get("ORCHESTRATOR_PUSH_ALLOW_LOOPBACK_HTTP") == "1"


@attrs.frozen
class ServerSettings:
    """How ``orchestrator serve`` runs."""

    data_dir: Path = attrs.field(factory=default_data_dir)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    #: A machine with no heartbeat for this long is marked offline.
    stale_after: timedelta = timedelta(seconds=45)
    #: How often the server looks for stale machines.
    sweep_interval: timedelta = timedelta(seconds=15)
    #: Largest request body the server accepts.
    max_body_bytes: int = 1024 * 1024
    #: Send cookies only over HTTPS (turn on behind TLS).
    secure_cookies: bool = False
    #: Sign-in attempts allowed per client address per minute.
    login_attempts_per_minute: int = 10
    #: Cheap password hashing, for tests only.
    fast_hashing: bool = False
    #: Scheduled jobs may not run more often than this.
    job_minimum_interval: timedelta = timedelta(minutes=5)
    #: How often the server looks for due scheduled jobs.
    scheduler_tick: timedelta = timedelta(seconds=15)
    #: A Convex deployment to use instead of the embedded backend (``CONVEX_URL``).
    convex_url: str | None = None
    #: The deployment's ``ORCHESTRATOR_SERVER_SECRET``, proving calls come from this server.
    convex_server_secret: str | None = attrs.field(default=None, repr=False)
    #: ``websocket`` (live subscriptions) or ``http`` (polled, for networks that block WebSockets).
    convex_transport: Literal["websocket", "http"] = "websocket"
    #: The VAPID ``sub`` contact push services may write to (``ORCHESTRATOR_PUSH_CONTACT``).
    push_contact: str = attrs.field(factory=default_push_contact)
    #: Accept ``http://127.0.0.1`` push endpoints: for the loopback stand-in in tests only
    #: (``ORCHESTRATOR_PUSH_ALLOW_LOOPBACK_HTTP=1``).
    push_allow_loopback_http: bool = attrs.field(factory=push_loopback_allowed)
    #: A reply that took at least this long is notified when it finishes.
    long_reply_threshold: timedelta = timedelta(seconds=30)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "orchestrator.sqlite3"

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


@attrs.frozen
class MachineSettings:
    """How ``orchestrator worker start`` runs."""

    server_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    heartbeat_interval: timedelta = timedelta(seconds=10)
    #: A chat session with no activity for this long releases its agent (``IDLE_TIMEOUT``).
    idle_timeout: timedelta = timedelta(minutes=5)
    #: ``shared``: one opencode server per worker directory; ``per_session``: one per chat.
    process_policy: str = "shared"
    #: Talk to this Convex deployment directly instead of ``server_url`` (``CONVEX_URL``).
    convex_url: str | None = None
    convex_transport: Literal["websocket", "http"] = "websocket"
    #: Seconds between reconnect attempts grow up to this.
    max_backoff: timedelta = timedelta(seconds=30)
    request_timeout: timedelta = timedelta(seconds=15)

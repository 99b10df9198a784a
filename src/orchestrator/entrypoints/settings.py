"""Configuration of the server and the machine process, from flags and environment."""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Final, Literal

import attrs

DEFAULT_PORT = 8080
DEFAULT_HOST = "127.0.0.1"

#: A trusted proxy's address range.
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_data_dir() -> Path:
    """``$ORCHESTRATOR_DATA_DIR``, else ``$XDG_DATA_HOME/orchestrator``, else ``~/.local/share``."""
    if env := os.environ.get("ORCHESTRATOR_DATA_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "orchestrator"


def allowed_hosts_from_env() -> tuple[str, ...]:
    """The extra names the server answers to, from ``$ORCHESTRATOR_ALLOWED_HOSTS``."""
    raw = os.environ.get("ORCHESTRATOR_ALLOWED_HOSTS", "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


#: On Convex every function call is billed, so a machine there beats every 45 s (GitHub's
#: runner and HAPI use 30-60 s; the deployment marks a machine offline after 120 s), ...
CONVEX_HEARTBEAT: Final = timedelta(seconds=45)
#: ... streamed text is written at most every 250 ms instead of 50 ms ...
CONVEX_COALESCE_WINDOW: Final = 0.25
#: ... and the web server looks for due jobs every minute (the deployment's cron starts
#: them too). The deployment's own cron sweeps stale machines; the server does not.
CONVEX_SCHEDULER_TICK: Final = timedelta(seconds=60)


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
    #: A machine whose last WebSocket closed is marked offline unless it reconnects within this.
    disconnect_grace: timedelta = timedelta(seconds=5)
    #: Largest request body the server accepts.
    max_body_bytes: int = 1024 * 1024
    #: Send cookies only over HTTPS (the CLI turns it on when the public URL is https).
    secure_cookies: bool = False
    #: The URL users open, when it differs from the listening address (behind a proxy).
    advertised_url: str | None = None
    #: Proxies whose X-Forwarded-For/-Proto headers are believed (``--trusted-proxy``).
    trusted_proxies: tuple[Network, ...] = ()
    #: Failed sign-ins per account, and failed token checks per machine, allowed per minute.
    login_attempts_per_minute: int = 10
    #: Failed sign-ins and token checks allowed per minute on the whole server.
    failed_attempts_per_minute: int = 100
    #: Host names the server answers to besides its own address (DNS rebinding guard).
    allowed_hosts: tuple[str, ...] = attrs.field(factory=allowed_hosts_from_env)
    #: Open connections allowed from one client address (0: no cap; raise it behind a proxy).
    max_connections_per_address: int = 64
    #: A connection whose request head has not arrived by then is closed (slowloris).
    request_head_timeout: timedelta = timedelta(seconds=10)
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
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"


@attrs.frozen
class MachineSettings:
    """How ``orchestrator worker start`` runs."""

    server_url: str = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    heartbeat_interval: timedelta = timedelta(seconds=10)
    #: Streamed text is written to the backend at most once per this many seconds.
    coalesce_window: float = 0.05
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

    @classmethod
    def sized_for(cls, convex_url: str | None, **fields: Any) -> MachineSettings:
        """Settings for a machine on ``convex_url`` (or a server), its costs sized for Convex."""
        costs: dict[str, Any] = (
            {"heartbeat_interval": CONVEX_HEARTBEAT, "coalesce_window": CONVEX_COALESCE_WINDOW}
            if convex_url
            else {}
        )
        return cls(convex_url=convex_url, **{**costs, **fields})

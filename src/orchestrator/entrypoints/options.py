"""Command-line options shared by several commands, declared once.

``orchestrator up`` and ``orchestrator worker start`` both run a machine process,
so they take the same machine options (:data:`Heartbeat`, :data:`IdleTimeout`,
:data:`Policy`) and build their settings with :func:`machine_settings`; ``serve``
and ``up`` share the web options (:data:`PublicUrl`, :data:`SecureCookies`,
:data:`TrustedProxy`); the machine token options keep the token off the command line.
"""

from __future__ import annotations

import ipaddress
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, TextIO
from urllib.parse import urlsplit

import typer

from orchestrator.adapters.opencode import ProcessPolicy
from orchestrator.domain.errors import InvalidInput
from orchestrator.entrypoints.settings import MachineSettings

Heartbeat = Annotated[
    float | None,
    typer.Option(
        "--heartbeat",
        envvar="HEARTBEAT_INTERVAL",
        min=0.1,
        show_default=False,
        help="Seconds between the machine's heartbeats [default: 10; 45 on Convex, where"
        " every call is billed].",
    ),
]
IdleTimeout = Annotated[
    float,
    typer.Option(
        "--idle-timeout",
        envvar="IDLE_TIMEOUT",
        min=1,
        help="Seconds without activity before a chat session releases its agent.",
    ),
]
Policy = Annotated[
    ProcessPolicy,
    typer.Option(
        "--process-policy",
        envvar="PROCESS_POLICY",
        help="shared: one opencode server per worker folder; per_session: one per chat.",
    ),
]
#: The value of a token option that means "read it from standard input".
STDIN = "-"
DEFAULT_HEARTBEAT: float | None = None  # the backend decides: see MachineSettings.sized_for
DEFAULT_IDLE_TIMEOUT = MachineSettings().idle_timeout.total_seconds()
DEFAULT_POLICY = ProcessPolicy(MachineSettings().process_policy)

TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="MACHINE_TOKEN",
        show_default=False,
        help="Machine token from the web UI; '-' reads it from standard input. "
        "Leave it out to be asked: a token on the command line lands in shell history.",
    ),
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        show_default=False,
        help="Read the machine token from this file (for scripts and services).",
    ),
]


def machine_settings(
    heartbeat: float | None,
    idle_timeout: float,
    process_policy: ProcessPolicy,
    *,
    server_url: str = MachineSettings().server_url,
    convex_url: str | None = None,
    convex_transport: Literal["websocket", "http"] = "websocket",
) -> MachineSettings:
    """The machine process's settings from the shared machine options, sized for its backend."""
    beat = {} if heartbeat is None else {"heartbeat_interval": timedelta(seconds=heartbeat)}
    return MachineSettings.sized_for(
        convex_url,
        server_url=server_url,
        convex_transport=convex_transport,
        idle_timeout=timedelta(seconds=idle_timeout),
        process_policy=process_policy.value,
        **beat,
    )


def given_token(
    token: str | None, token_file: Path | None, stdin: TextIO = sys.stdin
) -> str | None:
    """The machine token from ``--token-file``, ``--token -`` (stdin) or ``--token``, if given."""
    if token_file is not None:
        try:
            return token_file.read_text().strip()
        except OSError as exc:
            raise InvalidInput(f"Cannot read the token file {token_file}: {exc.strerror}.") from exc
    if token == STDIN:
        return stdin.readline().strip()
    return token


PublicUrl = Annotated[
    str | None,
    typer.Option(
        "--public-url",
        envvar="ORCHESTRATOR_PUBLIC_URL",
        show_default=False,
        help="The URL people open, e.g. https://orchestrator.example.com behind a proxy "
        "(printed, and used in the setup link and the machine command).",
    ),
]
SecureCookies = Annotated[
    bool,
    typer.Option(
        "--secure-cookies",
        envvar="ORCHESTRATOR_SECURE_COOKIES",
        help="Send the session cookie over HTTPS only, always. Without it the cookie is "
        "Secure whenever the request came over HTTPS (directly, or per X-Forwarded-Proto "
        "from a trusted proxy) or --public-url is https.",
    ),
]
TrustedProxy = Annotated[
    list[str] | None,
    typer.Option(
        "--trusted-proxy",
        envvar="ORCHESTRATOR_TRUSTED_PROXIES",
        show_default=False,
        help="Address or CIDR range of a reverse proxy whose X-Forwarded-For/-Proto headers "
        "are believed (repeatable).",
    ),
]
LogLevel = Annotated[
    str,
    typer.Option(
        "--log-level",
        envvar="ORCHESTRATOR_LOG_LEVEL",
        help="debug, info, warning or error.",
    ),
]


def public_url(value: str | None) -> str | None:
    """``--public-url`` checked: an http(s) URL without a trailing slash, or None."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"--public-url {value!r} must start with http:// or https://.")
    return value.rstrip("/")


def secure_cookies(forced: bool, url: str | None) -> bool:
    """Whether every session cookie is Secure: ``--secure-cookies``, or an https public URL."""
    return forced or bool(url and url.startswith("https://"))


Insecure = Annotated[
    bool,
    typer.Option(
        "--insecure",
        envvar="ORCHESTRATOR_INSECURE",
        help="Allow sending the machine token over plain http to a server that is not on "
        "this computer (anyone on the network can read it; prefer https).",
    ),
]


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_warning(url: str, insecure: bool) -> str | None:
    """The warning for a token sent in clear to ``url``; refused unless ``insecure``."""
    parts = urlsplit(url)
    if parts.scheme != "http" or _is_loopback(parts.hostname or ""):
        return None
    if not insecure:
        raise InvalidInput(
            f"{url} is plain http: the machine token would cross the network unencrypted. "
            "Use an https:// URL, or pass --insecure to send it anyway."
        )
    return (
        f"Warning: the machine token goes to {url} unencrypted; anyone on the network can read it."
    )

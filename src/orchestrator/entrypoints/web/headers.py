"""What every response tells the browser, and which ``Host`` names the server answers to.

The Content-Security-Policy allows scripts and styles from this server's own
files only (no inline code), and no framing (clickjacking on Approve/Delete).
The ``Host`` check stops DNS rebinding: a web page whose name resolves to
127.0.0.1 cannot talk to a server on loopback, because its requests carry its
own name. A server answers to the address it is bound to, to ``localhost``,
``127.0.0.1`` and ``[::1]`` when that is a loopback address (any IP address
when bound to all interfaces), to its public URL's name, and to the names in
``ORCHESTRATOR_ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from orchestrator.domain.errors import InvalidInput
from orchestrator.entrypoints.settings import ServerSettings

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # The setup link carries a token in its query: never send it to another site.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
LOOPBACK_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1"})
ALL_INTERFACES: Final = frozenset({"", "0.0.0.0", "::"})  # noqa: S104


async def add_security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """Give ``response`` the security headers (an ``on_response_prepare`` signal handler)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port or the brackets of an IPv6 address."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    name = header.rpartition(":")[0] if header.count(":") == 1 else header
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allows_host(settings: ServerSettings, name: str) -> bool:
    """Whether a request for ``name`` (from :func:`host_name`) is meant for this server."""
    bound = host_name(settings.host)
    names = {host_name(h) for h in settings.allowed_hosts}
    names.add(bound)
    names.add(host_name(urlsplit(settings.public_url).netloc))
    if bound in ALL_INTERFACES:
        return name in names or name in LOOPBACK_NAMES or _is_ip(name)
    if _is_loopback(bound):
        names |= LOOPBACK_NAMES
    return name in names


def host_middleware(settings: ServerSettings) -> Middleware:
    """Refuse requests whose ``Host`` is a name this server was not told it has."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        header = request.headers.get("Host")
        if header is not None and not allows_host(settings, host_name(header)):
            raise InvalidInput(
                f"This server does not answer to the name {host_name(header)!r}. If that is"
                " its address, add it to ORCHESTRATOR_ALLOWED_HOSTS (comma-separated)."
            )
        return await handler(request)

    return middleware

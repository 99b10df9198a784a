"""Who is really asking when the server sits behind a reverse proxy.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the direct
peer is one of the trusted proxies (``--trusted-proxy``); anyone else could send
them to dodge rate limits or fake HTTPS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from aiohttp import hdrs, web

from orchestrator.domain.errors import InvalidInput
from orchestrator.entrypoints.settings import Network
from orchestrator.entrypoints.web.state import SETTINGS


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDR ranges (``10.0.0.0/8``, ``::1``); a bad one is one clear sentence."""
    networks = []
    for value in values:
        for item in value.replace(",", " ").split():
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError as exc:
                raise InvalidInput(
                    f"{item!r} is not an IP address or CIDR range (e.g. 10.0.0.0/8)."
                ) from exc
    return tuple(networks)


def _is_trusted(address: str | None, trusted: tuple[Network, ...]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(request: web.Request) -> str:
    """The client's address: the peer, or the nearest untrusted hop of X-Forwarded-For."""
    trusted = request.app[SETTINGS].trusted_proxies
    peer = request.remote
    if not _is_trusted(peer, trusted):
        return peer or "unknown"
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    hops = [hop for hop in hops if hop]
    # Walk back from the proxy nearest to us; the first hop we do not trust is the client.
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer or "unknown"


def request_scheme(request: web.Request) -> str:
    """``https`` or ``http`` as the client used it (X-Forwarded-Proto from a trusted proxy)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    if forwarded and _is_trusted(request.remote, request.app[SETTINGS].trusted_proxies):
        return forwarded.split(",")[0].strip().lower()
    return request.scheme


async def mark_cookies_secure(request: web.Request, response: web.StreamResponse) -> None:
    """Over HTTPS (directly or through a trusted proxy) every cookie set is Secure."""
    if request_scheme(request) != "https":
        return
    for morsel in response.cookies.values():
        morsel["secure"] = True
    # Recent aiohttp has already turned the cookies into headers when this signal runs.
    headers = response.headers.getall(hdrs.SET_COOKIE, [])
    if headers:
        del response.headers[hdrs.SET_COOKIE]
        for header in headers:
            attributes = {part.strip().lower() for part in header.split(";")[1:]}
            response.headers.add(
                hdrs.SET_COOKIE, header if "secure" in attributes else f"{header}; Secure"
            )

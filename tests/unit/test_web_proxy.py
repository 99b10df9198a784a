"""Behind a reverse proxy: client addresses and HTTPS come from trusted proxies only."""

from __future__ import annotations

import ipaddress
import logging
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from orchestrator.domain.errors import InvalidInput
from orchestrator.entrypoints.web.auth import SESSION_COOKIE
from orchestrator.entrypoints.web.proxy import parse_networks
from tests.unit.test_web_support import PASSWORD, Harness, running_app

pytestmark = pytest.mark.anyio

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


async def _fail_login(web: Harness, forwarded_for: str) -> int:
    response = await web.client.post(
        "/api/login",
        json={"username": "alice", "password": "wrong"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status


def _logged_clients(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage().split(" from ")[1].split(":")[0]
        for r in caplog.records
        if r.getMessage().startswith("Failed sign-in")
    ]


async def _failed_sign_in_names(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
    forwarded_for: str,
) -> list[str]:
    """The clients logged for one failed sign-in sent with *forwarded_for*."""
    caplog.set_level(logging.WARNING)
    async with running_app(tmp_path, trusted_proxies=trusted) as web:
        await web.create_user()
        assert await _fail_login(web, forwarded_for) == 401
    return _logged_clients(caplog)


async def test_a_trusted_proxy_names_the_forwarded_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Behind a trusted proxy, a failed sign-in is logged with the forwarded client."""
    assert await _failed_sign_in_names(tmp_path, caplog, LOOPBACK, "203.0.113.5") == ["203.0.113.5"]


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a trusted proxy, a made-up X-Forwarded-For is not believed: the peer is named."""
    assert await _failed_sign_in_names(tmp_path, caplog, (), "198.51.100.7") == ["127.0.0.1"]


async def test_the_client_is_the_nearest_untrusted_hop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that prepends fake hops is still named by its own address."""
    named = await _failed_sign_in_names(tmp_path, caplog, LOOPBACK, "10.9.9.1, 203.0.113.5")
    assert named == ["203.0.113.5"]


@pytest.mark.parametrize(
    ("trusted", "secure"), [(LOOPBACK, True), ((), False)], ids=["trusted", "untrusted"]
)
async def test_cookies_are_secure_when_a_trusted_proxy_says_https(
    tmp_path: Path, trusted: tuple[ipaddress.IPv4Network, ...], secure: bool
) -> None:
    """X-Forwarded-Proto: https from a trusted proxy makes the session cookie Secure."""
    async with running_app(tmp_path, trusted_proxies=trusted) as web:
        await web.create_user()
        response = await web.client.post(
            "/api/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-Proto": "https"},
        )
        assert response.status == 200
        jar: SimpleCookie = SimpleCookie()
        for header in response.headers.getall("Set-Cookie"):
            jar.load(header)
        assert bool(jar[SESSION_COOKIE]["secure"]) is secure


def test_trusted_proxies_parse_addresses_and_ranges() -> None:
    """Addresses, CIDR ranges, commas and spaces; anything else is one clear sentence."""
    assert parse_networks(["10.0.0.0/8, ::1", "192.168.1.7"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1"),
        ipaddress.ip_network("192.168.1.7"),
    )
    with pytest.raises(InvalidInput, match="not an IP address or CIDR range"):
        parse_networks(["proxy.example.com"])

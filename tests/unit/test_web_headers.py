"""Security headers on every response, and the Host check against DNS rebinding."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web.headers import SECURITY_HEADERS, allows_host, host_name
from tests.unit.test_web_support import Harness

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"allowed_hosts": ("orchestrator.lan",)}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/login"),
        ("GET", "/"),
        ("GET", "/api/session"),
        ("GET", "/static/style.css"),
        ("GET", "/static/js/dom.js"),
        ("GET", "/no-such-page"),
        ("GET", "/api/no-such-endpoint"),
        ("POST", "/api/login"),
        ("POST", "/api/machine/heartbeat"),
    ],
)
async def test_every_response_carries_the_security_headers(
    web: Harness, method: str, path: str
) -> None:
    """Pages, API answers, static files and errors all forbid framing, sniffing and inline code."""
    response = await web.client.request(method, path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status)
    policy = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


async def test_the_event_stream_carries_the_security_headers(web: Harness) -> None:
    """A streamed response (SSE) gets the headers too."""
    await web.sign_in()
    async with web.client.get("/api/events") as response:
        assert response.status == 200
        assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "attacker.localhost"]
)
async def test_a_foreign_host_name_is_refused(web: Harness, host: str) -> None:
    """A request naming another host (a DNS-rebinding page) gets 400 and a sentence."""
    api = await web.client.get("/api/session", headers={"Host": host})
    assert api.status == 400
    body = await api.json()
    assert "does not answer to the name" in body["error"]
    assert "ORCHESTRATOR_ALLOWED_HOSTS" in body["error"]
    page = await web.client.get("/login", headers={"Host": host})
    assert page.status == 400
    assert "csrf_token" not in await page.text()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost:8080", "LOCALHOST", "[::1]:8080", "orchestrator.lan:443"]
)
async def test_loopback_names_and_configured_names_are_served(web: Harness, host: str) -> None:
    """A loopback-bound server answers to localhost, 127.0.0.1, [::1] and its configured names."""
    response = await web.client.get("/login", headers={"Host": host})
    assert response.status == 200


@pytest.mark.parametrize(
    ("bound", "allowed", "name", "expected"),
    [
        ("127.0.0.1", (), "localhost", True),
        ("127.0.0.1", (), "::1", True),
        ("127.0.0.1", (), "192.168.1.5", False),
        ("::1", (), "127.0.0.1", True),
        ("0.0.0.0", (), "192.168.1.5", True),
        ("0.0.0.0", (), "fe80::1", True),
        ("0.0.0.0", (), "evil.example", False),
        ("0.0.0.0", ("box.lan",), "box.lan", True),
        ("192.168.1.5", (), "192.168.1.5", True),
        ("192.168.1.5", (), "localhost", False),
        ("192.168.1.5", (), "10.0.0.1", False),
        ("box.lan", (), "box.lan", True),
    ],
)
def test_which_names_a_server_answers_to(
    bound: str, allowed: tuple[str, ...], name: str, expected: bool
) -> None:
    """The bound address, loopback names for a loopback bind, any IP for all interfaces."""
    settings = ServerSettings(host=bound, allowed_hosts=allowed)
    assert allows_host(settings, host_name(name)) is expected


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Example.COM:8080", "example.com"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("localhost.", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_host_name_drops_port_brackets_and_case(header: str, name: str) -> None:
    """A Host header's name is compared without port, IPv6 brackets, trailing dot or case."""
    assert host_name(header) == name


def test_allowed_hosts_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORCHESTRATOR_ALLOWED_HOSTS is a comma-separated list of extra names."""
    monkeypatch.setenv("ORCHESTRATOR_ALLOWED_HOSTS", " box.lan, orchestrator.example.com ,")
    assert ServerSettings().allowed_hosts == ("box.lan", "orchestrator.example.com")

"""Sessions, CSRF, rate limits, first-run setup and the HTML sign-in."""

from __future__ import annotations

import re
import stat
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from orchestrator.entrypoints.web import setup_link
from orchestrator.entrypoints.web.auth import CSRF_MESSAGE, SESSION_COOKIE
from orchestrator.testing import FakeClock, InMemoryBackend, PlainHasher, SequentialIds
from tests.unit.test_web_support import PASSWORD, Harness, running_app

pytestmark = pytest.mark.anyio


def _session_cookie(set_cookie_headers: list[str]) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in set_cookie_headers:
        jar.load(header)
    return jar


def _csrf_from_form(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


async def test_sign_in_sets_an_httponly_samesite_cookie(web: Harness) -> None:
    """Signing in answers the user and a CSRF token, in an HttpOnly, SameSite cookie."""
    await web.create_user()
    response = await web.client.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert response.status == 200
    body = await response.json()
    assert body["user"]["username"] == "alice"
    assert body["csrf_token"]
    morsel = _session_cookie(response.headers.getall("Set-Cookie"))[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert not morsel["secure"]


async def test_secure_cookies_are_marked_secure(tmp_path: Path) -> None:
    """With secure_cookies on, the session cookie is sent over HTTPS only."""
    async with running_app(tmp_path, secure_cookies=True) as web:
        await web.create_user()
        response = await web.client.post(
            "/api/login", json={"username": "alice", "password": PASSWORD}
        )
        morsel = _session_cookie(response.headers.getall("Set-Cookie"))[SESSION_COOKIE]
        assert morsel["secure"] is True


async def test_wrong_password_is_refused(web: Harness) -> None:
    """A wrong password gets 401 and the same sentence as an unknown user."""
    await web.create_user()
    wrong = await web.client.post("/api/login", json={"username": "alice", "password": "nope"})
    unknown = await web.client.post("/api/login", json={"username": "bob", "password": "nope"})
    assert wrong.status == unknown.status == 401
    assert await wrong.json() == await unknown.json()
    assert (await wrong.json())["error"] == "Wrong username or password."


async def test_sign_in_is_rate_limited_per_address(web: Harness) -> None:
    """After the allowed attempts per minute, sign-in answers 429 until the minute passes."""
    await web.create_user()
    for _ in range(3):
        response = await web.client.post("/api/login", json={"username": "alice", "password": "x"})
        assert response.status == 401
    limited = await web.client.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert limited.status == 429
    assert (await limited.json())["type"] == "RateLimited"
    web.clock.advance(timedelta(seconds=61))
    again = await web.client.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert again.status == 200


async def test_session_returns_user_and_csrf_until_logout(web: Harness) -> None:
    """GET /api/session shows the user and CSRF token; after logout it answers 401."""
    csrf = await web.sign_in()
    session = await web.client.get("/api/session")
    assert (await session.json()) == {
        "user": (await session.json())["user"],
        "csrf_token": csrf,
    }
    out = await web.client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert out.status == 204
    after = await web.client.get("/api/session")
    assert after.status == 401
    assert (await after.json())["error"] == "Sign in first."


async def test_forged_cookie_is_no_session(web: Harness) -> None:
    """A cookie the server did not make counts as no session."""
    web.client.session.cookie_jar.update_cookies({SESSION_COOKIE: "gAAAAAforged"})
    response = await web.client.get("/api/session")
    assert response.status == 401


async def test_secret_key_is_private_and_survives_restarts(tmp_path: Path) -> None:
    """The cookie key is created 0600 and reused, so a restart signs nobody out."""
    async with running_app(tmp_path) as first:
        await first.sign_in()
        cookie = first.client.session.cookie_jar.filter_cookies(first.client.make_url("/"))
        value = cookie[SESSION_COOKIE].value
        sign_ins = dict(first.backend.sign_ins)
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    async with running_app(tmp_path) as second:
        await second.create_user()
        # The backend keeps its sign-ins across the restart (as SQLite and Convex do).
        second.backend.sign_ins.update(sign_ins)
        second.client.session.cookie_jar.update_cookies({SESSION_COOKIE: value})
        # The fresh backend numbers users the same way, so the old session names alice again.
        assert (await second.client.get("/api/session")).status == 200


async def test_setup_link_creates_the_first_account_once(web: Harness) -> None:
    """The setup link works once: it creates the first account, signs in, then is refused."""
    link = setup_link(web.app)
    assert link is not None
    assert link.startswith("http://127.0.0.1:8080/setup?token=")
    assert setup_link(web.app, "https://example.test/") == (
        "https://example.test" + link.removeprefix("http://127.0.0.1:8080")
    )
    path = link[link.index("/setup") :]
    token = path.split("token=")[1]
    form = await web.client.get(path)
    assert form.status == 200
    csrf = _csrf_from_form(await form.text())
    fields = {
        "csrf_token": csrf,
        "token": token,
        "username": "alice",
        "password": PASSWORD,
        "password_again": PASSWORD,
    }
    created = await web.client.post("/setup", data=fields, allow_redirects=False)
    assert created.status == 303
    assert created.headers["Location"] == "/"
    assert (await web.client.get("/api/session")).status == 200
    assert setup_link(web.app) is None
    assert setup_link(web.app, "https://example.test") is None
    reused = await web.client.post("/setup", data={**fields, "username": "mallory"})
    assert reused.status == 403
    assert await web.backend.count_users() == 1


async def test_setup_refuses_a_wrong_token(web: Harness) -> None:
    """A wrong setup token shows an error page and creates nothing."""
    response = await web.client.get("/setup?token=guess")
    assert response.status == 403
    assert "not valid" in await response.text()
    assert "Traceback" not in await response.text()


async def test_setup_keeps_the_token_after_invalid_input(web: Harness) -> None:
    """A too-short password re-shows the form with a sentence; the link still works."""
    link = setup_link(web.app)
    assert link is not None
    token = link.split("token=")[1]
    form = await web.client.get(f"/setup?token={token}")
    csrf = _csrf_from_form(await form.text())
    fields = {"csrf_token": csrf, "token": token, "username": "alice", "password": "short"}
    bad = await web.client.post("/setup", data=fields)
    assert bad.status == 400
    assert "at least 8 characters" in await bad.text()
    assert setup_link(web.app) == link


async def test_no_setup_link_when_an_account_exists(tmp_path: Path) -> None:
    """A server whose backend already has an account offers no setup link."""
    clock = FakeClock()
    backend = InMemoryBackend(clock=clock, ids=SequentialIds(), hasher=PlainHasher())
    await backend.create_user("alice", "hash")
    async with running_app(tmp_path, backend=backend) as web:
        assert setup_link(web.app) is None
        assert (await web.client.get("/setup?token=")).status == 403


async def test_setup_post_needs_csrf(web: Harness) -> None:
    """The setup form is refused without the CSRF field."""
    link = setup_link(web.app)
    assert link is not None
    token = link.split("token=")[1]
    response = await web.client.post(
        "/setup", data={"token": token, "username": "alice", "password": PASSWORD}
    )
    assert response.status == 403
    assert CSRF_MESSAGE in await response.text()


async def test_login_form_signs_in_and_shows_machines(web: Harness) -> None:
    """The HTML login form signs in and the start page lists the user's machines."""
    await web.machine_of("alice")
    home = await web.client.get("/", allow_redirects=False)
    assert home.status == 303
    assert home.headers["Location"] == "/login"
    form = await web.client.get("/login")
    csrf = _csrf_from_form(await form.text())
    signed = await web.client.post(
        "/login",
        data={"csrf_token": csrf, "username": "alice", "password": PASSWORD},
        allow_redirects=False,
    )
    assert signed.status == 303
    page = await web.client.get("/")
    assert page.status == 200
    html = await page.text()
    assert "laptop" in html
    assert 'name="csrf-token"' in html


async def test_login_form_wrong_password_rerenders(web: Harness) -> None:
    """A wrong password on the form shows the sentence with status 401."""
    await web.create_user()
    form = await web.client.get("/login")
    csrf = _csrf_from_form(await form.text())
    response = await web.client.post(
        "/login", data={"csrf_token": csrf, "username": "alice", "password": "wrong-one"}
    )
    assert response.status == 401
    assert "Wrong username or password." in await response.text()


async def test_login_form_without_csrf_is_refused(web: Harness) -> None:
    """Posting the login form without its CSRF field is refused with 403."""
    await web.create_user()
    response = await web.client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status == 403


async def test_logout_form_ends_the_session(web: Harness) -> None:
    """The sign-out button clears the session and goes to the sign-in page."""
    csrf = await web.sign_in()
    response = await web.client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert response.status == 303
    assert (await web.client.get("/api/session")).status == 401

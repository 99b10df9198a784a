"""Server-side sign-ins: signing out, everywhere, or with a new password ends cookies for good."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.fernet import Fernet

from orchestrator.entrypoints.web.auth import SESSION_COOKIE
from orchestrator.entrypoints.web.state import SETTINGS
from tests.unit.test_web_support import PASSWORD, Client, Harness

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"login_attempts_per_minute": 20}

NEW_PASSWORD = "a brand new passphrase"


def _cookie(client: Client) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE].value


async def _with_cookie(web: Harness, value: str) -> Client:
    """Another browser holding a copy of ``value`` (a stolen or copied cookie)."""
    copy = await web.new_client()
    copy.session.cookie_jar.update_cookies({SESSION_COOKIE: value})
    return copy


async def _status(client: Client) -> int:
    return (await client.get("/api/session")).status


async def test_a_copied_cookie_stops_working_after_sign_out(web: Harness) -> None:
    """After signing out, a copy of the session cookie no longer signs anyone in."""
    csrf = await web.sign_in()
    copy = await _with_cookie(web, _cookie(web.client))
    assert await _status(copy) == 200  # the copy worked, and is now cached as valid
    out = await web.client.post("/api/logout", headers={"X-CSRF-Token": csrf})
    assert out.status == 204
    assert await _status(copy) == 401
    page = await copy.get("/", allow_redirects=False)
    assert page.headers["Location"] == "/login"


async def test_sign_out_everywhere_ends_every_browser(web: Harness) -> None:
    """ "Sign out everywhere" ends the sign-ins of every browser of the user, not others'."""
    csrf = await web.sign_in()
    laptop = await web.new_client()
    await web.sign_in(laptop)
    bob = await web.new_client()
    await web.sign_in(bob, "bob")
    assert await _status(laptop) == 200
    response = await web.client.post(
        "/api/logout", json={"everywhere": True}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 204
    assert await _status(laptop) == 401
    assert await _status(web.client) == 401
    assert await _status(bob) == 200


async def test_the_sign_out_everywhere_button_ends_every_browser(web: Harness) -> None:
    """The page's "Sign out everywhere" button (a form post) signs out the other browser too."""
    await web.sign_in()
    laptop = await web.new_client()
    await web.sign_in(laptop)
    page = await web.client.get("/")
    html = await page.text()
    assert 'name="everywhere" value="1"' in html
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    response = await web.client.post(
        "/logout", data={"csrf_token": csrf, "everywhere": "1"}, allow_redirects=False
    )
    assert response.status == 303
    assert await _status(laptop) == 401


async def test_the_plain_sign_out_button_leaves_other_browsers(web: Harness) -> None:
    """The plain "Sign out" ends this browser's sign-in only."""
    await web.sign_in()
    laptop = await web.new_client()
    await web.sign_in(laptop)
    html = await (await web.client.get("/")).text()
    csrf = html.split('name="csrf_token" value="')[1].split('"')[0]
    await web.client.post("/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert await _status(web.client) == 401
    assert await _status(laptop) == 200


async def test_a_new_password_ends_the_other_sign_ins(web: Harness) -> None:
    """Changing the password keeps this browser signed in and signs every other one out."""
    csrf = await web.sign_in()
    laptop = await web.new_client()
    await web.sign_in(laptop)
    response = await web.client.post(
        "/api/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status == 200
    assert await response.json() == {"signed_out": 1}
    assert await _status(web.client) == 200
    assert await _status(laptop) == 401
    fresh = await web.new_client()
    old = await fresh.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert old.status == 401
    new = await fresh.post("/api/login", json={"username": "alice", "password": NEW_PASSWORD})
    assert new.status == 200


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"current_password": "not it at all", "new_password": NEW_PASSWORD}, 401, "Wrong"),
        ({"current_password": PASSWORD, "new_password": "short"}, 400, "at least 8"),
        ({"current_password": PASSWORD}, 400, "'new_password' is required"),
    ],
)
async def test_a_refused_password_change_changes_nothing(
    web: Harness, body: dict[str, str], status: int, error: str
) -> None:
    """A wrong current password or a bad new one gets a sentence; no browser is signed out."""
    csrf = await web.sign_in()
    laptop = await web.new_client()
    await web.sign_in(laptop)
    response = await web.client.post("/api/password", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status == status
    assert error in (await response.json())["error"]
    assert await _status(laptop) == 200
    fresh = await web.new_client()
    again = await fresh.post("/api/login", json={"username": "alice", "password": PASSWORD})
    assert again.status == 200


async def test_a_cookie_without_a_sign_in_signs_nobody_in(web: Harness) -> None:
    """A validly encrypted cookie naming a user but no sign-in (the old format) is no sign-in."""
    user = await web.create_user()
    key = (web.app[SETTINGS].data_dir / "secret_key").read_bytes()
    forged = Fernet(key).encrypt_at_time(
        json.dumps({"c": "csrf", "u": user.user_id}).encode(),
        int(web.clock.now().timestamp()),
    )
    copy = await _with_cookie(web, forged.decode())
    assert await _status(copy) == 401

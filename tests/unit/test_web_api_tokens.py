"""API tokens in the web app: managed with the cookie, presented by scripts as a bearer token."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.domain.api_tokens import API_TOKEN_FORMAT, WRONG_API_TOKEN
from orchestrator.entrypoints.web.auth import BROWSER_ONLY_MESSAGE, CSRF_MESSAGE
from orchestrator.entrypoints.web.tokens_api import BEARER_FORMAT
from tests.unit.test_web_support import Client, Harness, assert_needs_sign_in

pytestmark = pytest.mark.anyio


async def _create(web: Harness, csrf: str, name: str = "laptop script") -> dict[str, Any]:
    response = await web.client.post(
        "/api/tokens", json={"name": name}, headers={"X-CSRF-Token": csrf}
    )
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def _as_script(web: Harness, secret: str) -> Client:
    """A client with no cookies that sends ``secret`` as its bearer token."""
    client = await web.new_client()
    client.session.headers["Authorization"] = f"Bearer {secret}"
    return client


async def test_a_token_is_shown_once_and_listed_without_its_secret(web: Harness) -> None:
    """Creating answers the secret once; the list has name and times, never the secret."""
    csrf = await web.sign_in()
    created = await _create(web, csrf)
    assert created["secret"].startswith("oat_")
    assert created["token"]["name"] == "laptop script"
    listed = await (await web.client.get("/api/tokens")).json()
    assert [t["token_id"] for t in listed["tokens"]] == [created["token"]["token_id"]]
    assert listed["tokens"][0]["last_used_at"] is None
    assert created["secret"].split(":")[1] not in str(listed)


async def test_a_script_calls_the_user_api_with_its_token_and_no_csrf(web: Harness) -> None:
    """A bearer request reads and writes as its owner without cookie or CSRF token."""
    created = await _create(web, await web.sign_in())
    script = await _as_script(web, created["secret"])
    machines = await script.post("/api/machines", json={"name": "build box"})
    assert machines.status == 201, await machines.text()
    listed = await (await script.get("/api/machines")).json()
    assert [m["machine"]["name"] for m in listed["machines"]] == ["build box"]
    assert not script.session.cookie_jar.filter_cookies(script.make_url("/"))
    [token] = (await (await web.client.get("/api/tokens")).json())["tokens"]
    assert token["last_used_at"] is not None


async def test_a_revoked_token_is_refused_at_once(web: Harness) -> None:
    """After DELETE /api/tokens/{id}, the token gets 401 with one sentence."""
    csrf = await web.sign_in()
    created = await _create(web, csrf)
    script = await _as_script(web, created["secret"])
    assert (await script.get("/api/machines")).status == 200
    token_id = created["token"]["token_id"]
    revoked = await web.client.delete(f"/api/tokens/{token_id}", headers={"X-CSRF-Token": csrf})
    assert revoked.status == 204
    refused = await script.get("/api/machines")
    assert refused.status == 401
    assert await refused.json() == {"error": WRONG_API_TOKEN, "type": "AuthenticationFailed"}


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        ("Bearer nonsense", 400, API_TOKEN_FORMAT),
        ("Bearer oat_1:sec_" + "x" * 200, 400, API_TOKEN_FORMAT),
        ("Bearer", 401, BEARER_FORMAT),
        ("bearer oat_000099:sec_wrong", 401, WRONG_API_TOKEN),
        ("Bearer oat_000099:sec_wrong", 401, WRONG_API_TOKEN),
    ],
)
async def test_a_bad_bearer_header_gets_one_sentence(
    web: Harness, header: str, status: int, message: str
) -> None:
    """Malformed, other-scheme and wrong tokens are refused, also with a valid cookie beside."""
    await web.sign_in()
    response = await web.client.get("/api/machines", headers={"Authorization": header})
    assert response.status == status
    assert (await response.json())["error"] == message


async def test_other_schemes_leave_the_cookie_in_charge(web: Harness) -> None:
    """A reverse proxy's Basic auth header does not stop a signed-in browser."""
    await web.sign_in()
    response = await web.client.get(
        "/api/machines", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}
    )
    assert response.status == 200


async def test_wrong_tokens_are_rate_limited_per_token(web: Harness) -> None:
    """Guessing one token's secret is limited like sign-in failures (3 a minute here)."""
    await web.create_user()
    statuses = []
    for n in range(5):
        response = await web.client.get(
            "/api/machines", headers={"Authorization": f"Bearer oat_000001:sec_guess{n}"}
        )
        statuses.append(response.status)
    assert statuses == [401, 401, 401, 429, 429]


async def test_another_users_token_id_cannot_be_revoked(web: Harness) -> None:
    """Bob deleting Alice's token id gets 404, and Alice's token keeps working."""
    created = await _create(web, await web.sign_in())
    bob = await web.new_client()
    bob_csrf = await web.sign_in(bob, "bob")
    token_id = created["token"]["token_id"]
    response = await bob.delete(f"/api/tokens/{token_id}", headers={"X-CSRF-Token": bob_csrf})
    assert response.status == 404
    assert (await response.json())["error"] == "No such API token."
    assert (await (await _as_script(web, created["secret"])).get("/api/session")).status == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "x" * 101}, "Token name must be at most 100 characters."),
        ({"name": "  "}, "Token name must not be empty."),
        ({"name": 7}, "The field 'name' must be a string."),
        ({}, "The field 'name' is required."),
    ],
)
async def test_bad_token_names_change_nothing(
    web: Harness, body: dict[str, object], message: str
) -> None:
    """An oversized, empty or missing name is 400 with one sentence; no token is made."""
    csrf = await web.sign_in()
    response = await web.client.post("/api/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status == 400
    assert (await response.json())["error"] == message
    assert (await (await web.client.get("/api/tokens")).json()) == {"tokens": []}


async def test_tokens_are_managed_with_cookie_and_csrf_only(web: Harness) -> None:
    """Token routes need CSRF from a browser, and refuse a bearer token outright."""
    csrf = await web.sign_in()
    no_csrf = await web.client.post("/api/tokens", json={"name": "x"})
    assert no_csrf.status == 403
    assert (await no_csrf.json())["error"] == CSRF_MESSAGE
    created = await _create(web, csrf)
    script = await _as_script(web, created["secret"])
    for method, path in [
        ("POST", "/api/tokens"),
        ("GET", "/api/tokens"),
        ("DELETE", f"/api/tokens/{created['token']['token_id']}"),
        ("POST", "/api/password"),
        ("POST", "/api/logout"),
    ]:
        response = await script.request(method, path, json={"name": "more"})
        assert response.status == 403, path
        assert (await response.json())["error"] == BROWSER_ONLY_MESSAGE
    assert len((await (await web.client.get("/api/tokens")).json())["tokens"]) == 1


async def test_a_bearer_token_does_not_reach_pages(web: Harness) -> None:
    """Pages stay cookie-only: a bearer token on / is not a sign-in."""
    created = await _create(web, await web.sign_in())
    script = await _as_script(web, created["secret"])
    response = await script.get("/", allow_redirects=False)
    assert response.status in (302, 303)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/tokens"), ("POST", "/api/tokens"), ("DELETE", "/api/tokens/oat_1")],
)
async def test_token_routes_need_a_session(web: Harness, method: str, path: str) -> None:
    """Without a cookie (and without a bearer token) token routes answer 401, one sentence."""
    await assert_needs_sign_in(web, method, path, {"name": "x"})

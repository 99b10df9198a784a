"""Every browser endpoint needs a session, and every one that changes state the CSRF token."""

from __future__ import annotations

import pytest

from tests.unit import (
    test_web_chat_api,
    test_web_commands_api,
    test_web_jobs_api,
    test_web_user_api,
)
from tests.unit.test_web_support import Harness, assert_needs_csrf, assert_needs_sign_in

pytestmark = pytest.mark.anyio

#: Each API's endpoints (IDs need not exist: auth is checked first), with a body its
#: state changes would accept, so that only the missing CSRF token can refuse them.
APIS: dict[str, tuple[list[tuple[str, str]], object]] = {
    "user": (test_web_user_api.ENDPOINTS, {"name": "x"}),
    "chat": (test_web_chat_api.ENDPOINTS, {"content": "x"}),
    "commands": (test_web_commands_api.ENDPOINTS, {"kind": "mkdir", "path": "x"}),
    "jobs": (test_web_jobs_api.ENDPOINTS, {}),
}
ENDPOINTS = [
    pytest.param(method, path, id=f"{api}:{method} {path}")
    for api, (endpoints, _) in APIS.items()
    for method, path in endpoints
]
UNSAFE = [
    pytest.param(method, path, body, id=f"{api}:{method} {path}")
    for api, (endpoints, body) in APIS.items()
    for method, path in endpoints
    if method != "GET"
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_needs_a_session(web: Harness, method: str, path: str) -> None:
    """Without a session every endpoint answers 401 with one sentence."""
    await assert_needs_sign_in(web, method, path)


@pytest.mark.parametrize(("method", "path", "body"), UNSAFE)
@pytest.mark.parametrize("csrf", [None, "wrong-token"])
async def test_state_changes_need_the_csrf_token(
    web: Harness, method: str, path: str, body: object, csrf: str | None
) -> None:
    """A signed-in request that changes state without the right CSRF token gets 403."""
    await assert_needs_csrf(web, method, path, csrf, body)

"""Every browser endpoint needs a session, and every one that changes state the CSRF token."""

from __future__ import annotations

import pytest

from tests.unit import test_web_jobs_api
from tests.unit.test_web_support import Harness, assert_needs_csrf, assert_needs_sign_in

pytestmark = pytest.mark.anyio

#: The user API: sign-in, machines, workers (test_web_user_api).
USER = [
    ("POST", "/api/logout"),
    ("GET", "/api/session"),
    ("GET", "/api/machines"),
    ("POST", "/api/machines"),
    ("GET", "/api/machines/mch_1"),
    ("DELETE", "/api/machines/mch_1"),
    ("GET", "/api/machines/mch_1/workers"),
    ("POST", "/api/machines/mch_1/workers"),
    ("POST", "/api/machines/mch_1/worker-tokens"),
    ("GET", "/api/workers/pending"),
    ("POST", "/api/workers/wrk_1/approve"),
    ("POST", "/api/workers/wrk_1/reject"),
    ("DELETE", "/api/workers/wrk_1"),
    ("PUT", "/api/workers/wrk_1/permission-policy"),
    ("GET", "/api/events"),
]
#: The chat API: sessions, messages, permissions (test_web_chat_api).
CHAT = [
    ("GET", "/api/workers/wrk_1/sessions"),
    ("POST", "/api/workers/wrk_1/sessions"),
    ("GET", "/api/sessions/chs_1"),
    ("POST", "/api/sessions/chs_1/end"),
    ("POST", "/api/sessions/chs_1/restore"),
    ("GET", "/api/sessions/chs_1/messages"),
    ("POST", "/api/sessions/chs_1/messages"),
    ("POST", "/api/sessions/chs_1/abort"),
    ("POST", "/api/sessions/chs_1/undo"),
    ("POST", "/api/sessions/chs_1/redo"),
    ("GET", "/api/sessions/chs_1/permissions"),
    ("POST", "/api/permissions/prm_1/answer"),
    ("POST", "/api/messages/msg_1/edit"),
    ("POST", "/api/messages/msg_1/cancel"),
    ("GET", "/api/sessions/chs_1/stream"),
]
#: The directory-command API (test_web_commands_api).
COMMANDS = [
    ("POST", "/api/machines/mch_1/commands"),
    ("GET", "/api/machines/mch_1/commands"),
    ("POST", "/api/machines/mch_1/tree"),
    ("GET", "/api/commands/cmd_1"),
    ("POST", "/api/commands/cmd_1/cancel"),
    ("GET", "/api/commands/cmd_1/stream"),
]

#: Each API's endpoints (IDs need not exist: auth is checked first) and a body for its state
#: changes (the CSRF token is checked before the body, so any body shows that).
APIS: dict[str, tuple[list[tuple[str, str]], object]] = {
    "user": (USER, {"name": "x"}),
    "chat": (CHAT, {"content": "x"}),
    "commands": (COMMANDS, {"kind": "mkdir", "path": "x"}),
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

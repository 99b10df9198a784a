"""Hostile bodies get a 4xx sentence, never a 500; the machine token comes before the body."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.errors import InvalidInput
from orchestrator.entrypoints.web.auth import CSRF_MESSAGE
from orchestrator.entrypoints.web.parsing import (
    MALFORMED_FORM,
    MALFORMED_JSON,
    MAX_JSON_DEPTH,
    NOT_UNICODE,
    TOO_DEEP,
    parse_json,
)
from tests.unit.test_web_support import Harness

pytestmark = pytest.mark.anyio

# Large enough that a 200,000-deep body reaches the JSON parser.
APP_OPTIONS: dict[str, Any] = {"max_body_bytes": 1_000_000}

DEEP = b"[" * 200_000 + b"]" * 200_000
JSON = {"Content-Type": "application/json"}


async def test_a_lone_surrogate_in_a_machine_name_is_refused(web: Harness) -> None:
    """A machine name holding a lone surrogate gets 400 with a sentence and creates nothing."""
    csrf = await web.sign_in()
    response = await web.client.post(
        "/api/machines",
        data=b'{"name": "laptop \\ud800"}',
        headers={**JSON, "X-CSRF-Token": csrf},
    )
    assert response.status == 400
    assert await response.json() == {"error": NOT_UNICODE, "type": "InvalidInput"}
    user = await web.backend.find_user("alice")
    assert user is not None
    assert await web.backend.list_machines(user[0].user_id) == []


async def test_deep_json_on_sign_in_is_refused(web: Harness) -> None:
    """200,000-deep JSON on /api/login gets 400 saying how deep JSON may nest."""
    response = await web.client.post("/api/login", data=DEEP, headers=JSON)
    assert response.status == 400
    assert await response.json() == {"error": TOO_DEEP, "type": "InvalidInput"}


async def test_deep_json_on_the_user_api_is_refused(web: Harness) -> None:
    """200,000-deep JSON on /api/machines gets 400, not a server error."""
    csrf = await web.sign_in()
    response = await web.client.post(
        "/api/machines", data=DEEP, headers={**JSON, "X-CSRF-Token": csrf}
    )
    assert response.status == 400
    assert (await response.json())["error"] == TOO_DEEP


async def test_deep_json_on_the_machine_api_is_refused(web: Harness) -> None:
    """200,000-deep JSON on /api/machine/heartbeat gets 400, and the machine stays as it was."""
    machine, token = await web.machine_of()
    response = await web.client.post(
        "/api/machine/heartbeat",
        data=DEEP,
        headers={**JSON, "Authorization": f"Bearer {token}"},
    )
    assert response.status == 400
    assert (await response.json())["error"] == TOO_DEEP
    again = await web.backend.get_machine(machine.user_id, machine.machine_id)
    assert again.status == machine.status


async def test_invalid_utf8_json_is_refused(web: Harness) -> None:
    """A JSON body that is not UTF-8 gets 400 "not valid JSON"."""
    csrf = await web.sign_in()
    response = await web.client.post(
        "/api/machines", data=b'{"name": "\xff\xfe"}', headers={**JSON, "X-CSRF-Token": csrf}
    )
    assert response.status == 400
    assert (await response.json())["error"] == MALFORMED_JSON


async def test_invalid_utf8_sign_in_form_is_refused(web: Harness) -> None:
    """A sign-in form that is not UTF-8 gets a 400 page with a sentence, not a server error."""
    response = await web.client.post(
        "/login",
        data=b"username=\xff\xfe&password=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 400
    assert MALFORMED_FORM in await response.text()


async def _raw_post(web: Harness, path: str, headers: list[bytes], body: bytes) -> bytes:
    """POST ``body`` with raw ``headers`` (which no client library would send); the answer."""
    assert web.server.port is not None
    request = b"".join(
        [
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode(),
            *(header + b"\r\n" for header in headers),
            f"Content-Length: {len(body)}\r\n\r\n".encode(),
            body,
        ]
    )
    answer = b""
    async with await anyio.connect_tcp("127.0.0.1", web.server.port) as stream:
        await stream.send(request)
        with anyio.fail_after(5):
            try:
                while True:
                    answer += await stream.receive()
            except anyio.EndOfStream:
                pass
    return answer


async def test_a_malformed_multipart_sign_in_form_is_refused(web: Harness) -> None:
    """A broken multipart form on the sign-in page gets 400 and a sentence, not a 500."""
    multipart = b"Content-Type: multipart/form-data; boundary=zz"
    answer = await _raw_post(web, "/login", [multipart], b"--zz\r\nbad!")
    assert answer.startswith(b"HTTP/1.1 400")
    assert MALFORMED_FORM.encode() in answer


async def test_a_csrf_header_that_is_not_utf8_is_refused(web: Harness) -> None:
    """An X-CSRF-Token of bytes that are not UTF-8 gets 403 "invalid CSRF token", not a 500."""
    await web.sign_in()
    cookie = web.client.session.cookie_jar.filter_cookies(web.client.make_url("/"))
    signed_in = b"Cookie: " + cookie.output(header="", sep=";").strip().encode()
    not_utf8 = b"X-CSRF-Token: \xff\xfe"
    answer = await _raw_post(
        web, "/api/machines", [signed_in, not_utf8, b"Content-Type: application/json"], b"{}"
    )
    assert answer.startswith(b"HTTP/1.1 403")
    assert CSRF_MESSAGE.encode() in answer


async def test_a_device_cookie_that_is_not_utf8_is_ignored(web: Harness) -> None:
    """A device cookie of bytes that are not UTF-8 counts as none: sign-in still works."""
    await web.create_user()
    body = b'{"username": "alice", "password": "correct horse battery"}'
    not_utf8 = b"Cookie: orchestrator_device=\xff\xfe"
    answer = await _raw_post(web, "/api/login", [not_utf8, b"Content-Type: application/json"], body)
    assert answer.startswith(b"HTTP/1.1 200")


async def test_deep_json_over_the_machine_websocket_is_answered(web: Harness) -> None:
    """A too-deep WebSocket message is answered with an error frame; the connection stays."""
    _, token = await web.machine_of()
    headers = {"Authorization": f"Bearer {token}"}
    async with web.client.ws_connect("/api/machine/ws", headers=headers) as ws:
        await ws.send_str("[" * 30_000 + "]" * 30_000)
        with anyio.fail_after(5):
            frame = await ws.receive_json()
        assert frame == {"id": None, "error": TOO_DEEP, "type": "InvalidInput"}
        await ws.send_str(json.dumps({"id": 1, "subscribe": "nothing"}))
        with anyio.fail_after(5):
            frame = await ws.receive_json()
        assert frame["id"] == 1


async def test_machine_token_is_checked_before_a_large_body_is_read(web: Harness) -> None:
    """A wrong token announcing a 10 MB body is refused without the body ever being sent."""
    machine, _ = await web.machine_of()
    host, port = web.server.host, web.server.port
    assert port is not None
    request = (
        "POST /api/machine/heartbeat HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {machine.machine_id}:sec_wrong\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 10000000\r\n\r\n"
    )
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(request.encode())
        with anyio.fail_after(5):
            head = await stream.receive()
    assert head.startswith(b"HTTP/1.1 401"), head


@given(st.binary(max_size=200))
def test_parse_json_accepts_what_json_accepts_or_says_why(raw: bytes) -> None:
    """Any bytes either parse like ``json.loads`` or raise InvalidInput; nothing else escapes."""
    try:
        value = parse_json(raw)
    except InvalidInput:
        return
    assert value == json.loads(raw)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_parse_json_depth_limit_is_exact(depth: int) -> None:
    """JSON nested exactly as deep as the limit parses; one level more is refused."""
    raw = "[" * depth + "]" * depth
    if depth <= MAX_JSON_DEPTH:
        assert parse_json(raw) is not None
    else:
        with pytest.raises(InvalidInput, match="nested"):
            parse_json(raw)

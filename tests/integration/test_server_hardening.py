"""`orchestrator serve` as a real subprocess: private data, security headers, DNS rebinding."""

from __future__ import annotations

import http.client
import json
import stat
from pathlib import Path

import pexpect
import pytest

from tests.integration.harness import Server, create_user_and_machine, running_server
from tests.integration.test_worker_start import spawn_worker

pytestmark = pytest.mark.slow


def _request(
    server: Server,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: object = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        data = None if body is None else json.dumps(body)
        headers = {**(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.msg, response.read()
    finally:
        connection.close()


def _get(server: Server, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = _request(server, "GET", path, {"Host": host} if host else None)
    return status, dict(headers.items()), body


def test_a_fresh_data_directory_is_private(tmp_path: Path) -> None:
    """The data directory the server creates is 0700: no other user reads the database or keys."""
    data_dir = tmp_path / "new" / "data"
    with running_server(data_dir):
        mode = stat.S_IMODE(data_dir.stat().st_mode)
    assert mode == 0o700
    assert stat.S_IMODE((data_dir / "secret_key").stat().st_mode) == 0o600


def test_a_rebinding_page_cannot_reach_a_loopback_server(tmp_path: Path) -> None:
    """A request naming another host gets 400; the server's own names get the page, with headers."""
    with running_server(tmp_path / "data") as server:
        status, _, body = _get(server, "/api/session", host=f"rebind.example:{server.port}")
        assert status == 400
        assert "does not answer to the name 'rebind.example'" in json.loads(body)["error"]
        for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
            status, headers, _ = _get(server, "/login", host=host)
            assert status == 200
            assert headers["X-Frame-Options"] == "DENY"
            assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer"


def test_a_copied_session_cookie_dies_with_sign_out(tmp_path: Path) -> None:
    """On the SQLite backend, a cookie copied before signing out is refused afterwards."""
    data_dir = tmp_path / "data"
    with running_server(data_dir) as server:
        create_user_and_machine(data_dir)
        status, headers, body = _request(
            server,
            "POST",
            "/api/login",
            body={"username": "alice", "password": "correct horse battery"},
        )
        assert status == 200
        cookie = next(
            c.split(";")[0]
            for c in headers.get_all("Set-Cookie") or []
            if c.startswith("orchestrator_session=")
        )
        signed_in = {"Cookie": cookie, "X-CSRF-Token": json.loads(body)["csrf_token"]}
        assert _request(server, "GET", "/api/session", {"Cookie": cookie})[0] == 200
        assert _request(server, "POST", "/api/logout", signed_in)[0] == 204
        assert _request(server, "GET", "/api/session", {"Cookie": cookie})[0] == 401


def _guess(server: Server, machine_id: str, times: int) -> None:
    for _ in range(times):
        bearer = {"Authorization": f"Bearer {machine_id}:sec_guess"}
        assert _request(server, "POST", "/api/machine/authenticate", bearer)[0] in (401, 429)


def test_bad_tokens_from_the_machines_address_do_not_stop_worker_start(tmp_path: Path) -> None:
    """Bad tokens for other machines from the same address: `worker start` comes online."""
    data_dir, root = tmp_path / "data", tmp_path / "projects"
    root.mkdir()
    with running_server(data_dir) as server:
        token = create_user_and_machine(data_dir)
        for n in range(12):
            _guess(server, f"mch_other{n % 2}", 1)
        child = spawn_worker(server.url, data_dir, tmp_path, "--token", token, "--root", str(root))
        try:
            child.expect("is online")
        finally:
            child.kill(9)
            child.expect(pexpect.EOF)


def test_worker_start_waits_while_its_machine_is_guessed(tmp_path: Path) -> None:
    """While its own machine id is locked by guessing, `worker start` says so and keeps trying."""
    data_dir, root = tmp_path / "data", tmp_path / "projects"
    root.mkdir()
    with running_server(data_dir) as server:
        token = create_user_and_machine(data_dir)
        _guess(server, token.split(":")[0], 12)
        child = spawn_worker(server.url, data_dir, tmp_path, "--token", token, "--root", str(root))
        try:
            child.expect("Too many attempts. Wait a minute and try again. Reconnecting in")
            # Not fatal: it keeps trying (quietly, one line per outage) instead of exiting.
            assert child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=5) == 1
            assert child.isalive()
        finally:
            child.kill(9)
            child.expect(pexpect.EOF)

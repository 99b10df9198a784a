"""Guessing limits keyed on what is attacked (a machine, an account) with a total ceiling.

Every client here shares one address (127.0.0.1), like machines behind a NAT
or browsers behind a proxy.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.application.machine_process import MachineProcess
from orchestrator.application.retry import Backoff
from orchestrator.domain.errors import RateLimited
from orchestrator.domain.ids import MachineToken
from orchestrator.domain.model import MachineStatus
from orchestrator.entrypoints.web.limits import DEVICE_COOKIE, AttemptGuard
from orchestrator.testing import FakeClock
from tests.unit.test_web_support import PASSWORD, Client, Harness

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"failed_attempts_per_minute": 6}

TOO_MANY = "Too many attempts. Wait a minute and try again."


async def _call(client: Client, token: MachineToken | str) -> tuple[int, Any]:
    response = await client.post(
        "/api/machine/authenticate", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status, await response.json()


async def _login(client: Client, username: str, password: str) -> int:
    response = await client.post("/api/login", json={"username": username, "password": password})
    return response.status


async def test_guesses_at_other_machines_do_not_lock_out_a_machine(web: Harness) -> None:
    """Failed token checks for another machine, from the same address, leave a machine alone."""
    mine, token = await web.machine_of()
    other, _ = await web.backend.create_machine(mine.user_id, "other")
    for _ in range(3):
        assert (await _call(web.client, f"{other.machine_id}:sec_guess"))[0] == 401
    assert (await _call(web.client, f"{other.machine_id}:sec_guess"))[0] == 429
    assert (await _call(web.client, token))[0] == 200


async def test_a_known_machine_token_passes_while_its_machine_is_attacked(web: Harness) -> None:
    """Once a token worked, guesses at its machine lock out the guesses, not the token."""
    machine, token = await web.machine_of()
    assert (await _call(web.client, token))[0] == 200
    for _ in range(3):
        assert (await _call(web.client, f"{machine.machine_id}:sec_guess"))[0] == 401
    status, body = await _call(web.client, f"{machine.machine_id}:sec_guess")
    assert (status, body["error"]) == (429, TOO_MANY)
    assert (await _call(web.client, token))[0] == 200


async def test_failed_checks_in_total_have_a_ceiling(web: Harness) -> None:
    """Failures spread over many machine ids hit the server-wide ceiling; a minute lifts it."""
    _, token = await web.machine_of()
    for n in range(6):
        assert (await _call(web.client, f"mch_unknown{n}:sec_guess"))[0] == 401
    assert (await _call(web.client, token))[0] == 429
    web.clock.advance(timedelta(seconds=61))
    assert (await _call(web.client, token))[0] == 200


async def test_a_machine_process_backs_off_when_rate_limited_and_says_so(web: Harness) -> None:
    """A machine process refused with 429 waits, reports it, and goes online afterwards."""
    machine, token = await web.machine_of()
    for _ in range(3):
        await _call(web.client, f"{machine.machine_id}:sec_guess")
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        web.clock.advance(timedelta(seconds=61))  # the minute passes while it waits

    remote = RemoteMachineBackend(str(web.server.make_url("")).rstrip("/"))
    async with remote:
        process = MachineProcess(
            remote, token, Path("/srv"), backoff=Backoff(base=0.01, cap=0.02), report=report
        )
        with anyio.fail_after(10):
            online = await process.start()
    assert online.status is MachineStatus.ONLINE
    assert any(line.startswith(TOO_MANY) and "Reconnecting in" in line for line in lines)


async def test_successful_sign_ins_do_not_count(web: Harness) -> None:
    """Signing in right more often than the limit is never refused."""
    await web.create_user()
    for _ in range(6):
        assert await _login(web.client, "alice", PASSWORD) == 200


async def test_guesses_at_one_account_leave_another_alone(web: Harness) -> None:
    """Wrong passwords for bob, from the same address, do not stop alice signing in."""
    await web.create_user("alice")
    await web.create_user("bob")
    for _ in range(3):
        assert await _login(web.client, "bob", "wrong password") == 401
    assert await _login(web.client, "bob", PASSWORD) == 429
    browser = await web.new_client()
    assert await _login(browser, "alice", PASSWORD) == 200


async def test_a_browser_that_signed_in_before_is_not_locked_out(web: Harness) -> None:
    """While alice's account is being guessed, her own browser still signs in; others wait."""
    await web.create_user()
    browser = await web.new_client()
    assert await _login(browser, "alice", PASSWORD) == 200
    assert browser.session.cookie_jar.filter_cookies(browser.make_url("/"))[DEVICE_COOKIE]
    attacker = web.client
    for _ in range(3):
        assert await _login(attacker, "alice", "wrong password") == 401
    assert await _login(attacker, "alice", PASSWORD) == 429
    assert await _login(browser, "alice", PASSWORD) == 200


async def test_a_trusted_browser_loses_trust_after_a_wrong_password(web: Harness) -> None:
    """A device cookie buys no free guessing: one wrong password and it is limited like others."""
    await web.create_user()
    browser = await web.new_client()
    assert await _login(browser, "alice", PASSWORD) == 200
    for _ in range(3):
        await _login(web.client, "alice", "wrong password")
    assert await _login(browser, "alice", "wrong password") == 401
    assert await _login(browser, "alice", PASSWORD) == 429


@pytest.mark.parametrize("username", ["alice", "nobody"])
async def test_a_very_long_password_is_refused_with_a_sentence(web: Harness, username: str) -> None:
    """A password over 1,024 characters gets 400 and a sentence, account or not, unhashed."""
    await web.create_user()
    response = await web.client.post(
        "/api/login", json={"username": username, "password": "x" * 3000}
    )
    assert response.status == 400
    assert (await response.json())["error"] == "A password must be at most 1024 characters."


async def test_the_sign_in_page_shows_the_limit_sentence(web: Harness) -> None:
    """The HTML sign-in answers 429 with the sentence once an account is being guessed."""
    await web.create_user()
    page = await web.client.get("/login")
    csrf = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
    for _ in range(3):
        response = await web.client.post(
            "/login", data={"username": "alice", "password": "wrong", "csrf_token": csrf}
        )
        assert response.status == 401
    response = await web.client.post(
        "/login", data={"username": "alice", "password": PASSWORD, "csrf_token": csrf}
    )
    assert response.status == 429
    assert TOO_MANY in await response.text()


async def _burst(guard: AttemptGuard, proof: str | None, size: int) -> list[str]:
    """``size`` attempts on one target at once, each held until all have started."""
    release = anyio.Event()
    outcomes: list[str] = []

    async def held() -> str:
        await release.wait()
        return "ok"

    async def one() -> None:
        try:
            outcomes.append(await guard.attempt("machine:mch_1", proof, held))
        except RateLimited:
            outcomes.append("limited")

    async with anyio.create_task_group() as tg:
        for _ in range(size):
            tg.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        release.set()
    return sorted(outcomes)


async def test_a_burst_of_untrusted_attempts_is_limited_while_in_flight() -> None:
    """Sign-in counts attempts while they run: a burst sent at once is cut at the limit."""
    guard = AttemptGuard.create(3, 100, FakeClock())
    assert await _burst(guard, None, 5) == ["limited", "limited", "ok", "ok", "ok"]


async def test_a_machines_burst_of_calls_is_never_limited() -> None:
    """Machine tokens count failures only: many calls at once with a new token all pass."""
    guard = AttemptGuard.create(3, 5, FakeClock(), count_in_flight=False)
    assert await _burst(guard, "mch_1:sec_1", 20) == ["ok"] * 20


async def test_trusted_attempts_are_not_counted_while_in_flight() -> None:
    """Once a proof worked, a burst with it passes even where bursts are counted."""
    guard = AttemptGuard.create(3, 100, FakeClock())
    guard.trust("machine:mch_1", "device")
    assert await _burst(guard, "device", 10) == ["ok"] * 10

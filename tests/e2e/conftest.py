"""Browser fixtures: Debian's chromium driven by Playwright, one browser for the whole run."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from orchestrator.adapters.opencode import find_opencode
from orchestrator.domain.errors import AgentUnavailable
from orchestrator.testing.fake_model import FakeModelServer, opencode_environment
from tests.e2e.harness import (
    SCREENSHOTS,
    Chat,
    Output,
    Server,
    running,
    sign_in,
    wait_for_online_worker,
)
from tests.integration.harness import (
    cli_env,
    create_user_and_machine,
    fake_model_thread,
    start_worker,
)

FAILED = pytest.StashKey[bool]()
#: Chromium's console message for anything the Content-Security-Policy refused.
CSP_REPORT = "Content Security Policy"
CHROMIUM = Path("/usr/bin/chromium")
#: Real processes answer within seconds; a loaded CI machine gets some slack.
expect.set_options(timeout=15_000)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)  # CI installs both; missing there is a broken setup
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module: sync Playwright runs an event loop while it is open,
    so it must be closed before the async tests of later modules start theirs."""
    if not CHROMIUM.exists():
        _missing("chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context; on failure its last screen lands in ``artifacts/screenshots``.

    Every page the test opens must pass the Content-Security-Policy: a violation
    Chromium reports on the console fails the test.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}") if CSP_REPORT in message.text else None
        ),
    )
    yield page
    if request.node.stash.get(FAILED, False):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"failed-{request.node.name}.png", full_page=True)
    context.close()
    assert violations == [], "the Content-Security-Policy was violated"


@pytest.fixture
def opencode() -> None:
    """Skip (or fail in CI) when the opencode CLI is not installed."""
    try:
        find_opencode()
    except AgentUnavailable as exc:
        _missing(f"opencode is not installed: {exc.message}")


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    """The fake model on its own thread; tests change its reply and pace as they go."""
    with fake_model_thread() as server:
        yield server


@contextmanager
def machine_online(
    page: Page, server: Server, token: str, root: Path, env: dict[str, str], home: Path
) -> Iterator[Output]:
    """The machine process for ``token`` online on ``root``, alice signed in; stopped after."""
    machine = Output(start_worker(server.url, token, root, env, home))
    try:
        machine.wait_for(r"Machine .* is online")
        sign_in(page, server.url, "alice")
        yield machine
    finally:
        machine.stop()


@pytest.fixture
def chat(opencode: None, page: Page, model: FakeModelServer, tmp_path: Path) -> Iterator[Chat]:
    """alice signed in, her machine online, a worker on ``app`` online with its models."""
    data_dir, root, home = tmp_path / "data", tmp_path / "projects", tmp_path / "machine"
    (root / "app").mkdir(parents=True, exist_ok=True)  # a test may have made it a git repo
    home.mkdir()
    with running(Server(data_dir)) as server:
        token = create_user_and_machine(data_dir)
        env = opencode_environment(
            tmp_path / "opencode", model.base_url, base_env=cli_env(data_dir)
        )
        with machine_online(page, server, token, root, env, home) as machine:
            machine_id = token.split(":")[0]
            worker_id, model_name = wait_for_online_worker(page, machine_id, "app")
            yield Chat(server, machine, machine_id, worker_id, model_name, token)


@attrs.frozen
class Machine:
    server: Server
    machine_id: str
    root: Path


@pytest.fixture
def machine(
    opencode: None, page: Page, model: FakeModelServer, tmp_path: Path
) -> Iterator[Machine]:
    """alice signed in on her machine's page; the machine process online, no workers yet.

    Her own opencode config allows bash and edits, as opencode's defaults do: what
    asks first is the worker's permission policy, not the test's sandbox.
    """
    data_dir, root, home = tmp_path / "data", tmp_path / "projects", tmp_path / "machine"
    root.mkdir()
    home.mkdir()
    with running(Server(data_dir)) as server:
        token = create_user_and_machine(data_dir)
        env = opencode_environment(
            tmp_path / "opencode",
            model.base_url,
            permission={"bash": "allow", "edit": "allow"},
            base_env=cli_env(data_dir),
        )
        with machine_online(page, server, token, root, env, home):
            machine_id = token.split(":")[0]
            page.goto(f"{server.url}/machines/{machine_id}")
            yield Machine(server, machine_id, root)

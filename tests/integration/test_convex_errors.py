"""Convex's failures become our sentences; its raw messages reach only the log.

Against the loopback harness (the real functions, Convex's HTTP API, Convex's
per-call limits enforced by convex-test, lowered per deployment to reach them
with little data), on both transports.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import anyio
import pytest

from orchestrator.adapters.convex import ClientTransport, ConvexBackend, HttpTransport, Transport
from orchestrator.adapters.convex._errors import failed
from orchestrator.adapters.convex._wire import error_from_data
from orchestrator.adapters.wire import error_body, status_for
from orchestrator.application.retry import Backoff, Connection, retry_until_reachable
from orchestrator.domain.errors import BackendLimitExceeded, BackendUnavailable
from orchestrator.domain.ids import UserId
from tests.contract.convex_harness import ConvexHarness, unavailable_reason
from tests.contract.convex_stand_in_client import FACTORY

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

if reason := unavailable_reason():
    pytest.skip(reason, allow_module_level=True)

URL = "https://happy-otter-123.convex.cloud"
SECRET = "0123456789abcdef0123456789abcdef-the-server-secret"


def _transport(name: str, url: str) -> Transport:
    if name == "http":
        return HttpTransport(url, timeout=10, poll_interval=0.02)
    return ClientTransport(url, timeout=10, client_factory=FACTORY)


@pytest.fixture(params=["http", "websocket"])
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def few_reads(harness: ConvexHarness, transport_name: str) -> AsyncIterator[ConvexBackend]:
    """A deployment on which one call may scan at most 3 documents."""
    url = harness.new_deployment(transaction_limits={"documentsRead": 3})
    backend = ConvexBackend(_transport(transport_name, url), server_secret=harness.server_secret)
    try:
        yield backend
    finally:
        await backend.close()


async def test_a_read_over_convex_limit_is_a_named_error_not_unreachable(
    few_reads: ConvexBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """Too many documents read: BackendLimitExceeded with our sentence; the raw text is logged."""
    for name in ("ann", "bob", "cy", "dee"):
        await few_reads.create_user(name, "hash")
    with pytest.raises(BackendLimitExceeded, match=r"^This needs more data than Convex") as got:
        await few_reads.list_users()
    assert "Scanned too many documents" not in got.value.message
    assert "Scanned too many documents" in caplog.text


async def test_a_subscription_over_convex_limit_ends_with_the_named_error(
    few_reads: ConvexBackend,
) -> None:
    """A watch whose query reads too much raises BackendLimitExceeded instead of retrying."""
    alice = (await few_reads.create_user("alice", "hash")).user_id
    for name in ("a", "b", "c", "d"):
        await few_reads.create_machine(alice, name)
    updates = few_reads.watch_machines(alice)
    with anyio.fail_after(30), pytest.raises(BackendLimitExceeded):
        await anext(updates)
    await updates.aclose()


async def test_a_limit_error_is_not_retried(few_reads: ConvexBackend) -> None:
    """The machine's retry loop retries an unreachable backend, never a limit error."""
    for name in ("ann", "bob", "cy", "dee"):
        await few_reads.create_user(name, "hash")
    reports: list[str] = []
    with pytest.raises(BackendLimitExceeded):
        await retry_until_reachable(few_reads.list_users, Backoff(), Connection(reports.append))
    assert reports == []


async def test_a_write_over_convex_limit_is_a_named_error(
    harness: ConvexHarness, transport_name: str
) -> None:
    """Too many documents written: BackendLimitExceeded, and nothing was written."""
    url = harness.new_deployment(transaction_limits={"documentsWritten": 0})
    backend = ConvexBackend(_transport(transport_name, url), server_secret=harness.server_secret)
    try:
        with pytest.raises(BackendLimitExceeded, match=r"^This would write more data"):
            await backend.create_user("alice", "hash")
        assert await backend.count_users() == 0
    finally:
        await backend.close()


async def test_an_argument_error_shows_no_arguments(
    harness: ConvexHarness, transport_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A function's validation failure: a sentence naming the function, the details in the log."""
    secret = harness.server_secret
    assert secret is not None
    transport = _transport(transport_name, harness.new_deployment())
    try:
        with pytest.raises(BackendUnavailable) as got:
            await transport.call("query", "accounts:count", {"serverSecret": secret, "bogus": "x"})
    finally:
        await transport.close()
    assert "accounts:count" in got.value.message
    assert "bogus" not in got.value.message
    assert secret not in got.value.message
    assert "bogus" in caplog.text


def test_a_development_deployments_validation_message_never_reaches_a_user(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Convex's ArgumentValidationError quotes the arguments: only the log gets them."""
    raw = (
        "ArgumentValidationError: Object contains extra field `bogus` that is not in the"
        f' validator.\n\nObject: {{bogus: "x", serverSecret: "{SECRET}"}}\n'
        "Validator: v.object({serverSecret: v.string()})"
    )
    with caplog.at_level(logging.WARNING):
        error = failed(URL, "accounts:count", raw)
    assert isinstance(error, BackendUnavailable)
    assert SECRET not in error.message
    assert SECRET not in str(error_body(error))
    assert SECRET in caplog.text


@pytest.mark.parametrize(
    ("raw", "sentence"),
    [
        (
            "Too many bytes read in a single function execution (limit: 16777216 bytes).",
            "more data than Convex lets one call read",
        ),
        (
            "Read too much data in a single function execution (limit: 16777216 bytes).",
            "more data than Convex lets one call read",
        ),
        (
            "Too many documents written in a single function execution (limit: 16000).",
            "more data than Convex lets one call write",
        ),
        ("Value is too large (1.05 MiB > maximum size 1 MiB)", "too large for one Convex record"),
        ("Array length is too long (8193 > maximum length 8192)", "too large for one Convex"),
    ],
)
def test_convex_limit_messages_become_named_errors(raw: str, sentence: str) -> None:
    """Each of Convex's documented limit messages maps to BackendLimitExceeded (HTTP 507)."""
    error = failed(URL, "chat:listMessagesPage", raw)
    assert isinstance(error, BackendLimitExceeded)
    assert sentence in error.message
    assert raw not in error.message
    assert status_for(error) == 507


def test_other_function_failures_name_only_the_function() -> None:
    """An unrelated function failure stays BackendUnavailable naming only the function."""
    error = failed(URL, "chat:listMessagesPage", f"Uncaught Error: boom for {UserId('usr_1')}")
    assert isinstance(error, BackendUnavailable)
    assert "usr_1" not in error.message


def test_an_unknown_convex_error_shows_its_text_only_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A ConvexError whose data names no error of ours: a fixed sentence, the text logged."""
    with caplog.at_level(logging.WARNING):
        error = error_from_data({"kind": "Mystery"}, f"failed with {SECRET}")
    assert error.message == (
        "The Convex deployment refused the call. The server log has the details."
    )
    assert SECRET in caplog.text

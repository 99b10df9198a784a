"""Pure rules of notifications: endpoints, quiet hours, short lines, push service answers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.errors import InvalidInput, PayloadTooLarge
from orchestrator.domain.notifications import (
    MAX_LINE,
    Delivery,
    NotificationSettings,
    PushEvent,
    PushReply,
    is_quiet,
    parse_subscription,
    short_line,
    validate_endpoint,
    wants,
)


@pytest.mark.parametrize(
    ("endpoint", "loopback_ok", "accepted"),
    [
        ("https://fcm.googleapis.com/fcm/send/abc", False, True),
        ("http://127.0.0.1:9/push/a", True, True),
        ("http://localhost:9/push/a", True, True),
        ("http://127.0.0.1:9/push/a", False, False),
        ("http://push.example/a", True, False),
        ("https://user:pw@push.example/a", False, False),
        ("https:///nohost", False, False),
        ("https://[::1", False, False),
    ],
)
def test_endpoints_must_be_https_except_allowed_loopback(
    endpoint: str, loopback_ok: bool, accepted: bool
) -> None:
    """Only https:// endpoints; http://loopback only with the test setting."""
    if accepted:
        assert validate_endpoint(endpoint, allow_loopback_http=loopback_ok) == endpoint
    else:
        with pytest.raises(InvalidInput):
            validate_endpoint(endpoint, allow_loopback_http=loopback_ok)


@given(st.recursive(st.none() | st.text() | st.integers(), lambda c: st.dictionaries(st.text(), c)))
def test_any_json_is_a_subscription_or_one_sentence(raw: object) -> None:
    """Whatever JSON arrives, parsing accepts it or raises a user-facing error."""
    try:
        parse_subscription(raw)
    except (InvalidInput, PayloadTooLarge) as exc:
        message = exc.message
    else:
        message = "accepted."
    assert message.endswith(".")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2030, 1, 1, hour, minute, tzinfo=UTC)


def test_quiet_hours_span_midnight_in_the_users_zone() -> None:
    """22:00-07:00 in Berlin (UTC+1 in winter) is quiet at 21:30 UTC, not at 06:30 UTC."""
    night = NotificationSettings(quiet_start="22:00", quiet_end="07:00", time_zone="Europe/Berlin")
    assert is_quiet(night, at(21, 30))
    assert is_quiet(night, at(5, 59))
    assert not is_quiet(night, at(6, 0))
    assert not is_quiet(night, at(20, 59))
    day = NotificationSettings(quiet_start="09:00", quiet_end="17:00")
    assert is_quiet(day, at(9))
    assert not is_quiet(day, at(17))
    assert not is_quiet(NotificationSettings(), at(3))


def test_wants_needs_the_event_and_no_quiet_time() -> None:
    """An event turned off is never sent."""
    only_jobs = NotificationSettings(events=frozenset({PushEvent.JOB_FAILED}))
    assert wants(only_jobs, PushEvent.JOB_FAILED, at(12))
    assert not wants(only_jobs, PushEvent.PERMISSION, at(12))


def test_short_lines_are_one_line_and_bounded() -> None:
    """Whitespace collapses and long text ends with an ellipsis."""
    assert short_line("a\n  b") == "a b"
    long = short_line("word " * 50)
    assert len(long) == MAX_LINE
    assert long.endswith("…")


@pytest.mark.parametrize(
    ("status", "delivery"),
    [
        (201, Delivery.SENT),
        (404, Delivery.GONE),
        (410, Delivery.GONE),
        (429, Delivery.RETRY),
        (500, Delivery.RETRY),
        (None, Delivery.RETRY),
        (403, Delivery.REFUSED),
        (413, Delivery.REFUSED),
    ],
)
def test_push_service_answers(status: int | None, delivery: Delivery) -> None:
    """What each answer of a push service means."""
    assert PushReply(status).delivery() is delivery


def test_retry_after_in_seconds_is_honoured_and_capped() -> None:
    """Retry-After seconds win over the backoff, up to the cap; a date falls back."""
    assert PushReply(429, "7").retry_delay(1.0, 60.0) == 7.0
    assert PushReply(429, "600").retry_delay(1.0, 60.0) == 60.0
    assert PushReply(429, "Wed, 21 Oct 2015 07:28:00 GMT").retry_delay(1.5, 60.0) == 1.5

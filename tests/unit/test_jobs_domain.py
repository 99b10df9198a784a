"""Cron schedules of jobs: parsing, time zones, minimum interval, missed runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.jobs import (
    check_interval,
    first_run_after,
    next_due,
    parse_cron,
    parse_timezone,
)

NOW = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "where"),
    [
        ("61 * * * *", "minute field '61'"),
        ("* 24 * * *", "hour field '24'"),
        ("* * 0 * *", "day of month field '0'"),
        ("* * * 13 *", "month field '13'"),
        ("* * * * 8", "day of week field '8'"),
        ("* * *", "has 3 fields"),
        ("", "empty"),
    ],
)
def test_invalid_cron_says_which_field(expression: str, where: str) -> None:
    """Each invalid schedule is refused with a sentence naming the field at fault."""
    with pytest.raises(InvalidInput, match=where):
        parse_cron(expression)


def test_cron_whitespace_is_normalised() -> None:
    """Extra spaces between fields are accepted and collapsed."""
    assert parse_cron("  */5   *  * * 1-5 ") == "*/5 * * * 1-5"


@given(st.text(max_size=40))
def test_parse_cron_accepts_only_what_it_can_schedule(raw: str) -> None:
    """Whatever the input, parse_cron either refuses it or returns 5 fields with a next time."""
    try:
        cron = parse_cron(raw)
    except InvalidInput:
        return
    assert len(cron.split(" ")) == 5
    next_due(cron, "UTC", NOW)  # never raises for an accepted schedule


def test_due_times_follow_the_job_time_zone_across_daylight_saving() -> None:
    """'0 9 * * *' in Berlin is 08:00 UTC in winter and 07:00 UTC in summer."""
    winter = next_due("0 9 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC))
    summer = next_due("0 9 * * *", "Europe/Berlin", datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert winter == datetime(2026, 3, 29, 7, tzinfo=UTC)
    assert summer == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_next_due_is_strictly_after_now() -> None:
    """A job due exactly now next runs at its following slot, so a slot never runs twice."""
    at_slot = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert next_due("0 * * * *", "UTC", at_slot) == datetime(2026, 1, 1, 11, 0, tzinfo=UTC)


def test_missed_slots_collapse_into_the_next_one() -> None:
    """After a long outage the next due time is the first after now, not the missed ones."""
    back = datetime(2026, 1, 3, 10, 17, tzinfo=UTC)
    assert next_due("*/5 * * * *", "UTC", back) == datetime(2026, 1, 3, 10, 20, tzinfo=UTC)


def test_schedule_that_never_comes_due_is_refused() -> None:
    """February 30th never happens: the job cannot be saved."""
    with pytest.raises(InvalidInput):
        first_run_after(parse_cron("0 0 31 4 *"), "UTC", NOW)


def test_minimum_interval_is_enforced() -> None:
    """Schedules more frequent than the minimum are refused; the minimum itself is fine."""
    with pytest.raises(InvalidInput, match="more often than the minimum"):
        check_interval("* * * * *", "UTC", timedelta(minutes=5), NOW)
    with pytest.raises(InvalidInput, match="more often"):
        check_interval("0,1 9 * * *", "UTC", timedelta(minutes=5), NOW)
    check_interval("*/5 * * * *", "UTC", timedelta(minutes=5), NOW)
    check_interval("0 9 * * 1", "UTC", timedelta(minutes=5), NOW)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../../etc/passwd", "UTC; rm -rf /"])
def test_unknown_time_zones_are_refused(name: str) -> None:
    """Only IANA zone names are accepted."""
    with pytest.raises(InvalidInput, match="Unknown time zone"):
        parse_timezone(name)

"""Milliseconds since the epoch, the one time format of every backend and wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.domain.times import EPOCH, from_ms, to_ms


def test_times_round_trip_through_whole_milliseconds() -> None:
    """A time with whole milliseconds comes back equal, in UTC."""
    when = datetime(2026, 11, 28, 17, 3, 4, 123_000, tzinfo=UTC)
    assert to_ms(when) == 1_795_885_384_123
    assert from_ms(to_ms(when)) == when
    assert from_ms(to_ms(when)).tzinfo is UTC
    assert to_ms(EPOCH) == 0
    assert from_ms(0) == EPOCH


def test_to_ms_drops_microseconds_and_reads_any_zone() -> None:
    """Sub-millisecond parts are dropped (also before 1970); other zones count the same instant."""
    assert to_ms(datetime(2026, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == to_ms(
        datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert to_ms(EPOCH - timedelta(microseconds=1)) == -1
    paris = datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert to_ms(paris) == to_ms(datetime(2026, 1, 1, tzinfo=UTC))


def test_to_ms_refuses_a_naive_time() -> None:
    """A time without a zone is refused rather than read as local time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        to_ms(datetime(2026, 1, 1))


def test_from_ms_keeps_fractions_to_the_microsecond() -> None:
    """A fractional millisecond count (as JSON numbers may be) keeps its microseconds."""
    assert from_ms(1.5) == EPOCH + timedelta(microseconds=1500)
    assert from_ms(1_795_885_384_123.0) == datetime(2026, 11, 28, 17, 3, 4, 123_000, tzinfo=UTC)

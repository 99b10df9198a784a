"""Milliseconds since the epoch: how every backend and wire format stores a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def to_ms(when: datetime) -> int:
    """``when`` as integer milliseconds since the epoch; naive datetimes are refused."""
    if when.tzinfo is None:
        raise ValueError("Timestamps must be timezone-aware.")
    return (when - EPOCH) // _MS


def from_ms(ms: float) -> datetime:
    """The UTC time ``ms`` milliseconds after the epoch (fractions kept to the microsecond)."""
    return EPOCH + timedelta(milliseconds=ms)

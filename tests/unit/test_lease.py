"""The machine lease's rules and how a lease travels to the server."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.adapters.wire import lease_fields, lease_from_fields
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.lease import Lease


def test_a_lease_covers_three_heartbeats_and_at_least_three_seconds() -> None:
    """The lease outlives two missed heartbeats, never less than 3 s."""
    assert Lease.for_heartbeat("a", timedelta(seconds=10)).duration == timedelta(seconds=30)
    assert Lease.for_heartbeat("a", timedelta(seconds=0.5)).duration == timedelta(seconds=3)


def test_a_lease_round_trips_through_request_fields() -> None:
    """What the client sends is what the server reads; no lease sends nothing."""
    lease = Lease("abc", timedelta(seconds=3))
    assert lease_from_fields(lease_fields(lease)) == lease
    assert lease_fields(None) == {}
    assert lease_from_fields({}) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"instance": "abc"},
        {"lease_ms": 100},
        {"instance": "", "lease_ms": 100},
        {"instance": "x" * 65, "lease_ms": 100},
        {"instance": 5, "lease_ms": 100},
        {"instance": "abc", "lease_ms": -1},
        {"instance": "abc", "lease_ms": True},
        {"instance": "abc", "lease_ms": 1.5},
        {"instance": "abc", "lease_ms": 3_600_001},
    ],
)
def test_a_malformed_lease_is_one_sentence(fields: dict[str, object]) -> None:
    """A missing, empty, too long or mistyped field is refused with InvalidInput."""
    with pytest.raises(InvalidInput) as refused:
        lease_from_fields(fields)
    assert refused.value.message.endswith(".")

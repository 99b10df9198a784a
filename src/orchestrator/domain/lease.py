"""One machine process per machine: the running one holds a lease it renews with each heartbeat.

A machine process picks a random instance id when it starts. ``go_online``
claims the machine's lease for it, unless another instance holds a lease that
has not run out (``MachineInUse``: the second process waits as a standby);
each heartbeat renews the lease for ``lease_seconds``; ``go_offline`` releases
it, and only its holder may. A process whose lease was taken over after it ran
out (it was stopped or cut off for that long) learns so on its next heartbeat
and stops. The same rules run in ``backend_convex/convex/machines.ts``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from orchestrator.domain.errors import MachineInUse

#: The lease a machine process asks for: this many heartbeats may be missed.
HEARTBEATS_PER_LEASE = 3
TAKEN_OVER = "Another machine process took over this machine, so this one stops."


@attrs.frozen
class Lease:
    """What a machine process claims: its instance id, for how long from each call."""

    instance: str
    duration: timedelta

    @classmethod
    def for_heartbeat(cls, instance: str, heartbeat_interval: timedelta) -> Lease:
        """A lease that survives ``HEARTBEATS_PER_LEASE - 1`` missed heartbeats."""
        duration = max(heartbeat_interval * HEARTBEATS_PER_LEASE, timedelta(seconds=3))
        return cls(instance, duration)


def check_claim(
    holder: str | None, lease_until: datetime | None, now: datetime, instance: str
) -> None:
    """Raise MachineInUse unless ``instance`` may take the machine's lease now."""
    if holder is None or holder == instance:
        return
    if lease_until is not None and lease_until > now:
        raise MachineInUse()


def check_renewal(holder: str | None, instance: str) -> None:
    """Raise MachineInUse if another instance has taken the lease over."""
    if holder is not None and holder != instance:
        raise MachineInUse(TAKEN_OVER)


def may_release(holder: str | None, instance: str | None) -> bool:
    """Whether ``instance`` may take the machine offline (None: a caller without a lease)."""
    return instance is None or holder is None or holder == instance

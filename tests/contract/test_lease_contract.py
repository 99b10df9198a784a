"""The machine lease: one machine process per machine, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.errors import MachineInUse
from orchestrator.domain.lease import TAKEN_OVER, Lease
from orchestrator.domain.model import MachineStatus
from orchestrator.domain.ports import Backend
from tests.contract.conftest import MachineFactory

pytestmark = pytest.mark.anyio

HOUR = timedelta(hours=1)
FIRST, SECOND = Lease("first-process", HOUR), Lease("second-process", HOUR)


async def test_a_second_process_is_refused_while_the_first_holds_the_lease(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """While the first process's lease runs, a second one is refused and changes nothing."""
    machine, token = await new_machine()
    await backend.go_online(token, "/first", FIRST)
    with pytest.raises(MachineInUse) as refused:
        await backend.go_online(token, "/second", SECOND)
    assert refused.value.message == MachineInUse.default_message
    stored = await backend.authenticate(token)
    assert (stored.status, stored.root_directory) == (MachineStatus.ONLINE, "/first")
    # The refused process leaving (its clean-up) does not take the first one offline.
    await backend.go_offline(token, SECOND)
    assert (await backend.authenticate(token)).status is MachineStatus.ONLINE
    assert (await backend.heartbeat(token, FIRST)).status is MachineStatus.ONLINE
    assert machine.machine_id == stored.machine_id


async def test_the_lease_passes_on_when_released_or_run_out(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """A lease released by go_offline, or one that ran out, can be taken by another process."""
    _, token = await new_machine()
    await backend.go_online(token, "/r", FIRST)
    await backend.go_offline(token, FIRST)
    assert (await backend.authenticate(token)).status is MachineStatus.OFFLINE
    await backend.go_online(token, "/r", SECOND)  # released: taken at once
    expired = Lease("third-process", timedelta(0))
    await backend.go_offline(token, SECOND)
    await backend.go_online(token, "/r", expired)
    await backend.go_online(token, "/r", FIRST)  # the third's lease has run out
    assert (await backend.authenticate(token)).status is MachineStatus.ONLINE


async def test_a_process_whose_lease_was_taken_over_is_told_so_on_its_heartbeat(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """After a takeover the old holder's heartbeat is refused; the new holder's works."""
    _, token = await new_machine()
    await backend.go_online(token, "/r", Lease("stalled", timedelta(0)))
    await backend.go_online(token, "/r", SECOND)
    with pytest.raises(MachineInUse) as lost:
        await backend.heartbeat(token, Lease("stalled", HOUR))
    assert lost.value.message == TAKEN_OVER
    assert (await backend.heartbeat(token, SECOND)).status is MachineStatus.ONLINE
    # The same process starting again (same instance) is its own holder.
    await backend.go_online(token, "/r", SECOND)


async def test_calls_without_a_lease_work_as_before(
    backend: Backend, new_machine: MachineFactory
) -> None:
    """A caller that claims no lease (e.g. a one-off tool) is neither checked nor blocks others."""
    _, token = await new_machine()
    await backend.go_online(token, "/r")
    await backend.heartbeat(token)
    await backend.go_online(token, "/r", FIRST)
    await backend.go_offline(token)
    assert (await backend.authenticate(token)).status is MachineStatus.OFFLINE

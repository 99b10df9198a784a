"""A live event the server cannot take for now (its backend down) is kept by the machine.

The real app and the machine's live outbox over a real WebSocket; the relay's
store is wrapped so that it refuses with ``BackendUnavailable`` for a while.
The machine keeps the refused event and sends it again while draining, so it is
stored once the backend is back instead of being dropped.
"""

from __future__ import annotations

import anyio
import pytest

from orchestrator.entrypoints.web.state import LIVE
from tests.contract.test_live_relay_faults import FlakyStore
from tests.integration import test_live_relay
from tests.integration.test_live_relay import Turn, _stored_text
from tests.integration.test_remote_support import LiveServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

#: The live-relay suite's streaming reply (its app and machine client are conftest's).
turn = test_live_relay.turn


async def test_an_event_the_server_cannot_take_now_is_kept_and_stored_later(
    server: LiveServer, turn: Turn
) -> None:
    """Refused as unavailable: kept unacknowledged, sent again, stored once the backend is back."""
    assert server.runner is not None
    relay = server.runner.app[LIVE]
    flaky = FlakyStore(relay.store, down=True)
    relay.store = flaky
    await turn.outbox.send(turn.text(0, "kept "))
    with anyio.fail_after(10):
        while not flaky.refused:
            await anyio.sleep(0.02)
    await anyio.sleep(0.3)  # the refusal reaches the machine
    assert list(turn.outbox.unacked) == [1]
    flaky.down = False
    with anyio.fail_after(20):
        await turn.outbox.drain(turn.session_id)
    assert await _stored_text(server, turn) == "kept "

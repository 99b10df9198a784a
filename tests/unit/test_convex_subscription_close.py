"""A watch reading the subscription child's pipe while the transport closes ends cleanly.

``close`` drops the pipe's reader before its first await; a watch that had just
checked for ``closed`` and was waiting for the pumping lock then found no reader
(CI saw an ``AssertionError`` escape ``watch_machines``). It must end as
:class:`BackendUnavailable`, like every other watch of a closed transport.
"""

from __future__ import annotations

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from orchestrator.adapters.convex._subscriptions import SubscriptionProcess
from orchestrator.domain.errors import BackendUnavailable

pytestmark = pytest.mark.anyio


async def test_a_watch_waiting_for_the_pipe_when_the_transport_closes_ends_unavailable() -> None:
    subscriptions = SubscriptionProcess("http://127.0.0.1:9")
    send, receive = anyio.create_memory_object_stream[bytes](1)
    subscriptions._lines = BufferedByteReceiveStream(receive)
    errors: list[BaseException] = []

    async def read() -> None:
        try:
            await subscriptions._next(1)
        except BaseException as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(read)
        await anyio.sleep(0)  # the watch starts and waits at the pumping lock's checkpoint
        await subscriptions.close()  # drops the reader before anything else
        await send.aclose()
    send.close()
    receive.close()
    assert len(errors) == 1
    assert isinstance(errors[0], BackendUnavailable), repr(errors[0])

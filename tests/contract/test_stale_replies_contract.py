"""The stale-machine sweep ends the streaming replies of the machines it sets offline.

A machine that vanished without closing its socket (frozen, or killed while the
server was down) never ends its reply; the sweep does, as interrupted, keeping
the text the reply holds, so no page shows "writing..." for ever.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestrator.domain.chat import GONE_REASON, MessageRole, MessageStatus
from orchestrator.domain.ids import UserId
from orchestrator.domain.parts import TextAppend
from orchestrator.domain.ports import Backend
from tests.contract.conftest import Chat, MachineFactory, claimed

pytestmark = pytest.mark.anyio


async def test_the_sweep_ends_a_silent_machines_reply_interrupted_with_its_text(
    backend: Backend, alice: UserId, chat: Chat, new_machine: MachineFactory
) -> None:
    """A silent machine's streaming reply ends interrupted with its text; others' are untouched."""
    reply = await claimed(backend, alice, chat)
    await backend.append_part_text(
        chat.token, reply.message_id, TextAppend("prt_a", 0, "kept so far")
    )
    fresh, fresh_token = await new_machine("fresh", online=True)
    fresh = await backend.heartbeat(fresh_token)
    silent = await backend.authenticate(chat.token)
    assert silent.last_heartbeat is not None
    cutoff = silent.last_heartbeat + timedelta(milliseconds=1)
    assert await backend.mark_stale_machines_offline(cutoff) == [silent.machine_id]
    messages = await backend.list_messages(alice, chat.session.chat_session_id)
    assert [(m.role, m.status) for m in messages] == [
        (MessageRole.USER, MessageStatus.COMPLETED),
        (MessageRole.ASSISTANT, MessageStatus.INTERRUPTED),
    ]
    assert messages[1].content == "kept so far"
    assert messages[1].error == GONE_REASON
    statuses = {s.machine.name: s.machine.status for s in await backend.list_machines(alice)}
    assert statuses[fresh.name] == "online"
    # Swept again: nothing more to end, nothing reported.
    assert await backend.mark_stale_machines_offline(cutoff) == []

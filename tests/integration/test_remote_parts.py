"""Parts of replies through RemoteMachineBackend against the real app on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from orchestrator.adapters.remote import RemoteMachineBackend
from orchestrator.adapters.remote.wire import MACHINE_API_PREFIX
from orchestrator.domain.errors import OrchestratorError, TextGap
from orchestrator.domain.parts import (
    MAX_TOOL_OUTPUT_BYTES,
    StepFinishPart,
    TextKind,
    TextPart,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
)
from tests.integration.test_remote_chat import MODEL, _setup
from tests.integration.test_remote_support import LiveServer, fast_client, live_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with live_server(tmp_path) as live:
        yield live


@pytest.fixture
async def remote(server: LiveServer) -> AsyncIterator[RemoteMachineBackend]:
    async with fast_client(server.url) as client:
        yield client


async def test_parts_travel_over_the_machine_api(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """A remote machine stores tool, step and text parts; the owner lists them as sent."""
    setup = await _setup(server, remote)
    backend = server.backend
    session = await backend.start_session(setup.user, setup.worker.worker_id, MODEL)
    sent = await backend.send_message(setup.user, session.chat_session_id, "write a file")
    reply = await remote.claim_message(setup.token, sent.message_id)
    output = "x" * (MAX_TOOL_OUTPUT_BYTES + 10)
    tool = ToolPart("write", "call_1", ToolState(ToolStatus.COMPLETED, "{}", "a.txt", output))
    stored = await remote.save_part(setup.token, reply.message_id, "prt_tool", tool)
    assert isinstance(stored.body, ToolPart)
    assert stored.body.state.output_size == MAX_TOOL_OUTPUT_BYTES + 10
    finish = StepFinishPart("stop", 0.5, Tokens(input=7, output=3))
    await remote.save_part(setup.token, reply.message_id, "prt_step", finish)
    first = await remote.append_part_text(setup.token, reply.message_id, "prt_t", 0, "Done")
    again = await remote.append_part_text(setup.token, reply.message_id, "prt_t", 0, "Done")
    assert (first.added, first.chunk is not None, again.added, again.chunk) == (4, True, 0, None)
    thought = await remote.append_part_text(
        setup.token, reply.message_id, "prt_r", 0, "hmm", TextKind.REASONING
    )
    assert thought.chunk is None
    with pytest.raises(TextGap, match=r"send again from character 4\.$"):
        await remote.append_part_text(setup.token, reply.message_id, "prt_t", 9, "!")
    parts = await backend.list_parts(setup.user, session.chat_session_id)
    assert [p.part_id for p in parts] == ["prt_tool", "prt_step", "prt_t", "prt_r"]
    assert parts[0].body == stored.body
    assert parts[1].body == finish
    assert parts[2].body == TextPart("Done")


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        ({"part_id": "prt_1"}, "The field 'body' must be a JSON object."),
        ({"part_id": "prt_1", "body": {"type": "tool"}}, "is not a part this version can read"),
        ({"part_id": "prt_1", "body": {"type": "text", "text": 5}}, "can read"),
    ],
)
async def test_a_malformed_part_is_refused_with_one_sentence(
    server: LiveServer, remote: RemoteMachineBackend, body: dict[str, object], sentence: str
) -> None:
    """A save_part body that is not a part is a 400 with one sentence; nothing is stored."""
    setup = await _setup(server, remote)
    session = await server.backend.start_session(setup.user, setup.worker.worker_id, MODEL)
    sent = await server.backend.send_message(setup.user, session.chat_session_id, "hi")
    reply = await remote.claim_message(setup.token, sent.message_id)
    auth = {"Authorization": f"Bearer {setup.token.machine_id}:{setup.token.secret}"}
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{server.url}{MACHINE_API_PREFIX}/save_part",
            json={"message_id": reply.message_id, **body},
            headers=auth,
        )
        assert answer.status == 400
        assert sentence in (await answer.json())["error"]
        bad_offset = await http.post(
            f"{server.url}{MACHINE_API_PREFIX}/append_part_text",
            json={"message_id": reply.message_id, "part_id": "p", "offset": "0", "text": "x"},
            headers=auth,
        )
        assert (await bad_offset.json())["error"] == "The field 'offset' must be an integer."
    assert await server.backend.list_parts(setup.user, session.chat_session_id) == []


async def test_remote_errors_match_the_backend(
    server: LiveServer, remote: RemoteMachineBackend
) -> None:
    """An unknown text kind over HTTP is refused with the field's allowed values."""
    setup = await _setup(server, remote)
    auth = {"Authorization": f"Bearer {setup.token.machine_id}:{setup.token.secret}"}
    async with aiohttp.ClientSession() as http:
        answer = await http.post(
            f"{server.url}{MACHINE_API_PREFIX}/append_part_text",
            json={"message_id": "msg_x", "part_id": "p", "offset": 0, "text": "x", "kind": "x"},
            headers=auth,
        )
    body = await answer.json()
    assert answer.status == 400, body
    assert body["error"] == "The field 'kind' must be one of: text, reasoning."
    assert isinstance(OrchestratorError(body["error"]), OrchestratorError)

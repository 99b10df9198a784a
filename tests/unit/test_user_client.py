"""``orchestrator.Client``: the user API with an API token; replies followed as they stream."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

import orchestrator
from orchestrator.adapters.remote.user_client import NOTHING_SENT, ReplyReader
from orchestrator.domain.api_tokens import API_TOKEN_FORMAT, WRONG_API_TOKEN
from orchestrator.domain.chat import ChatMessage, MessageStatus
from orchestrator.domain.ids import MessageId
from orchestrator.domain.parts import TextAppend
from orchestrator.entrypoints.web.streams import cancel_streams
from tests.unit.test_web_support import MODEL, Chat

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"keepalive": 0.05}


async def _client(chat: Chat) -> orchestrator.Client:
    _, secret = await chat.web.backend.create_api_token(chat.user, "tests")
    return orchestrator.Client(str(chat.web.server.make_url("/")), secret)


async def _reply_when_asked(chat: Chat, pieces: list[str], end: MessageStatus) -> None:
    """Play the machine: claim the next pending message, stream ``pieces``, end the reply."""
    backend = chat.web.backend
    with anyio.fail_after(10):
        while not (pending := [m for m in backend.chat_messages.values() if m.status == "pending"]):
            await anyio.sleep(0.01)
    reply = await backend.claim_message(chat.token, pending[0].message_id)
    offset = 0
    for piece in pieces:
        await backend.append_part_text(
            chat.token, reply.message_id, TextAppend("prt_1", offset, piece)
        )
        offset += len(piece)
        await anyio.sleep(0.02)
    if end is MessageStatus.COMPLETED:
        await backend.complete_message(chat.token, reply.message_id, "".join(pieces))
    else:
        await backend.end_reply(chat.token, reply.message_id, end, "The model went away.")


async def _collect(client: orchestrator.Client, session_id: str, into: list[str]) -> None:
    async for text in client.follow(session_id):
        into.append(text)


async def test_a_script_lists_starts_sends_and_follows_the_reply_as_it_streams(
    chat: Chat,
) -> None:
    """Machines, workers and a session come back as records; the reply streams piece by piece."""
    async with await _client(chat) as client:
        [summary] = await client.list_machines()
        [worker] = await client.list_workers(summary.machine.machine_id)
        assert worker.worker_id == chat.worker.worker_id
        session = await client.start_session(worker.worker_id, MODEL)
        sent = await client.send(session.chat_session_id, "Say hello")
        assert isinstance(sent, ChatMessage)
        pieces = ["Hel", "lo", " wor", "ld"]
        received: list[str] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(_reply_when_asked, chat, pieces, MessageStatus.COMPLETED)
            with anyio.fail_after(10):
                async for text in client.follow(session.chat_session_id):
                    received.append(text)
        assert "".join(received) == "Hello world"
        assert len(received) > 1, "the text arrived in pieces, not at the end"


async def test_a_dropped_stream_resumes_without_gap_or_repeat(chat: Chat) -> None:
    """The server ends the stream mid-reply; follow reconnects and the text adds up exactly."""
    backend = chat.web.backend
    received: list[str] = []
    async with await _client(chat) as client:
        session = await client.start_session(chat.worker.worker_id, MODEL)
        sent = await client.send(session.chat_session_id, "Say hello")
        reply = await backend.claim_message(chat.token, sent.message_id)
        await backend.append_part_text(chat.token, reply.message_id, TextAppend("prt_1", 0, "Hel"))
        async with anyio.create_task_group() as tg:
            tg.start_soon(_collect, client, session.chat_session_id, received)
            with anyio.fail_after(10):
                while not received:
                    await anyio.sleep(0.01)
                await cancel_streams(chat.web.app)  # every open stream ends, as on a restart
                await backend.append_part_text(
                    chat.token, reply.message_id, TextAppend("prt_1", 3, "lo")
                )
                await backend.complete_message(chat.token, reply.message_id, "Hello")
    assert "".join(received) == "Hello"
    assert received[0] == "Hel"


async def test_a_reply_finished_before_following_comes_whole(chat: Chat) -> None:
    """Following a reply that already ended yields its whole text once."""
    async with await _client(chat) as client:
        session = await client.start_session(chat.worker.worker_id, MODEL)
        sent = await client.send(session.chat_session_id, "Say hello")
        await _reply_when_asked(chat, ["Hi ", "there"], MessageStatus.COMPLETED)
        with anyio.fail_after(10):
            texts = [t async for t in client.follow(session.chat_session_id, sent.message_id)]
        assert texts == ["Hi there"]


async def test_a_failed_reply_raises_with_its_reason(chat: Chat) -> None:
    """A reply that fails ends the iteration with AgentUnavailable and the machine's reason."""
    async with await _client(chat) as client:
        session = await client.start_session(chat.worker.worker_id, MODEL)
        await client.send(session.chat_session_id, "Say hello")
        await _reply_when_asked(chat, ["Hal"], MessageStatus.FAILED)
        texts: list[str] = []
        with anyio.fail_after(10), pytest.raises(orchestrator.AgentUnavailable) as failed:
            await _collect(client, session.chat_session_id, texts)
        assert failed.value.message == "The model went away."
        assert texts == ["Hal"]


async def test_refusals_arrive_as_domain_errors_with_the_servers_sentence(chat: Chat) -> None:
    """Wrong and revoked tokens, others' records and bad input raise the server's own error."""
    url = str(chat.web.server.make_url("/"))
    with pytest.raises(orchestrator.InvalidToken) as malformed:
        orchestrator.Client(url, "not a token")
    assert malformed.value.message == API_TOKEN_FORMAT
    async with orchestrator.Client(url, "oat_000777:sec_wrong") as wrong:
        with pytest.raises(orchestrator.AuthenticationFailed) as refused:
            await wrong.list_machines()
        assert refused.value.message == WRONG_API_TOKEN
    async with await _client(chat) as client:
        with pytest.raises(orchestrator.NotFound) as missing:
            await client.list_workers("mch_someone_elses")
        assert missing.value.message == "No such machine."
        with pytest.raises(orchestrator.InvalidInput):
            await client.start_session(chat.worker.worker_id, "")
        session = await client.start_session(chat.worker.worker_id, MODEL)
        with pytest.raises(orchestrator.InvalidInput) as nothing:
            await anext(aiter(client.follow(session.chat_session_id)))
        assert nothing.value.message == NOTHING_SENT
        with pytest.raises(orchestrator.NotFound):
            await anext(aiter(client.follow("chs_nobody", "msg_nobody")))
        [token] = await chat.web.backend.list_api_tokens(chat.user)
        await chat.web.backend.revoke_api_token(chat.user, token.token_id)
        with pytest.raises(orchestrator.AuthenticationFailed):
            await client.list_machines()


async def test_an_unreachable_server_is_backend_unavailable() -> None:
    """Nobody listening: one sentence naming the address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with orchestrator.Client(f"http://127.0.0.1:{port}", "oat_1:sec_2") as client:
        with pytest.raises(orchestrator.BackendUnavailable) as down:
            await client.list_machines()
    assert f"127.0.0.1:{port}" in down.value.message


def _chunk(message: str, sequence: int, text: str, offset: int) -> dict[str, object]:
    return {
        "chunk_id": f"chk_{sequence}",
        "message_id": message,
        "chat_session_id": "chs_1",
        "chunk": text,
        "sequence": sequence,
        "timestamp": "2026-01-01T00:00:00+00:00",
        "part_id": "prt_1",
        "offset": offset,
    }


def _messages(status: str, content: str = "") -> dict[str, object]:
    stamp = "2026-01-01T00:00:00+00:00"
    return {
        "messages": [
            {
                "message_id": "msg_q",
                "chat_session_id": "chs_1",
                "role": "user",
                "content": "q",
                "status": "completed",
                "timestamp": stamp,
            },
            {
                "message_id": "msg_a",
                "chat_session_id": "chs_1",
                "role": "assistant",
                "content": content,
                "status": status,
                "timestamp": stamp,
                "reply_to": "msg_q",
            },
        ]
    }


def test_the_reader_places_early_chunks_and_never_repeats_text() -> None:
    """Chunks before the list are held; a resent or overlapping chunk adds only what is new."""
    reader = ReplyReader(MessageId("msg_q"))
    assert reader.feed("chunk", _chunk("msg_a", 1, "Hel", 0)) == []
    assert reader.feed("messages", _messages("streaming")) == ["Hel"]
    assert reader.feed("chunk", _chunk("msg_a", 1, "Hel", 0)) == []
    assert reader.feed("chunk", _chunk("msg_a", 2, "llo", 2)) == ["lo"]
    assert reader.feed("chunk", _chunk("msg_other", 3, "zzz", 0)) == []
    assert reader.feed("messages", _messages("completed", "Hello!")) == ["!"]
    assert reader.finished is not None
    assert reader.shown == "Hello!"

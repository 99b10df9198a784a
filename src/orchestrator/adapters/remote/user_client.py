"""A typed async client of ``orchestrator serve``'s user API, signed in with an API token.

::

    async with orchestrator.Client("http://127.0.0.1:8080", token) as client:
        session = await client.start_session(worker_id, model)
        await client.send(session.chat_session_id, "Hello")
        async for text in client.follow(session.chat_session_id):
            print(text, end="", flush=True)

Records arrive as the domain's own (``MachineSummary``, ``Worker``,
``ChatSession``, ``ChatMessage``) through the wire converter the server uses.
A refusal arrives as the domain exception the server raised, with its
sentence; a server that cannot be reached is ``BackendUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from datetime import timedelta
from typing import Any, Final, TypeVar

import aiohttp
import anyio
import attrs

from orchestrator.adapters.remote._transport import Closing, MachineApiClient
from orchestrator.adapters.wire import converter, error_from_body
from orchestrator.application.retry import Backoff
from orchestrator.domain.api_tokens import ApiCredential
from orchestrator.domain.chat import ChatChunk, ChatMessage, ChatSession, MessageRole, MessageStatus
from orchestrator.domain.errors import AgentUnavailable, BackendUnavailable, InvalidInput
from orchestrator.domain.ids import ChatSessionId, MachineId, MessageId, WorkerId
from orchestrator.domain.model import MachineSummary, Worker

T = TypeVar("T")

#: The server sends a keepalive comment every 15 s; a stream silent for this long is dead.
STREAM_SILENCE_SECONDS: Final = 60.0
#: Reconnects of one ``follow`` in a row before it gives up (each resumes where it left off).
MAX_RECONNECTS: Final = 8
NOTHING_SENT: Final = (
    "Nothing was sent in this session by this client. Send a message first, or pass message_id."
)
REPLY_FAILED: Final = "The reply failed."


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@attrs.define
class ReplyReader:
    """Turns a session's stream events into the text of one reply, each piece once.

    Chunks are keyed by part and offset (or by sequence without a part), so a
    stream that resumes or starts over (``snapshot``) never repeats text. A
    reply that had already finished when the stream started comes whole in the
    ``messages`` event; whatever of it was not yet shown is shown then.
    """

    asked: MessageId
    reply: MessageId | None = None
    shown: str = ""
    finished: ChatMessage | None = None
    last_id: int | None = None
    _parts: dict[str, int] = attrs.field(factory=dict)
    _sequences: set[int] = attrs.field(factory=set)
    _unplaced: list[ChatChunk] = attrs.field(factory=list)

    def feed(self, event: str, data: Any) -> list[str]:
        """The new text in one event (maybe none); sets ``finished`` when the reply ended."""
        if event == "error":
            raise error_from_body(500, data)
        if event == "messages":
            return self._messages(converter.structure(data["messages"], list[ChatMessage]))
        if event == "chunk":
            return self._chunk(converter.structure(data, ChatChunk))
        return []

    def _messages(self, messages: list[ChatMessage]) -> list[str]:
        texts: list[str] = []
        for message in messages:
            if message.role is MessageRole.ASSISTANT and message.reply_to == self.asked:
                if self.reply is None:
                    self.reply = message.message_id
                    # Chunks may come before the list that shows whose they are.
                    waiting, self._unplaced = self._unplaced, []
                    for chunk in waiting:
                        texts += self._chunk(chunk)
                if message.completed:
                    self.finished = message
                    if message.content.startswith(self.shown):
                        rest = message.content[len(self.shown) :]
                        self.shown = message.content
                        texts += [rest] if rest else []
        return texts

    def _chunk(self, chunk: ChatChunk) -> list[str]:
        if self.reply is None:
            self._unplaced.append(chunk)
            return []
        if chunk.message_id != self.reply:
            return []
        text = chunk.chunk
        if chunk.part_id is not None and chunk.offset is not None:
            seen = self._parts.get(chunk.part_id, 0)
            text = text[max(0, seen - chunk.offset) :]
            self._parts[chunk.part_id] = max(seen, chunk.offset + len(chunk.chunk))
        elif chunk.sequence in self._sequences:
            return []
        self._sequences.add(chunk.sequence)
        self.shown += text
        return [text] if text else []


class Client(Closing):
    """The user API of the server at ``url``, as the owner of the API ``token``.

    Create the token under Settings → API tokens. ``request_timeout`` bounds
    each call (not a followed stream, which may run as long as the reply).
    """

    def __init__(self, url: str, token: str, *, request_timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._token = str(ApiCredential.parse(token))  # a malformed token fails here, at once
        self.request_timeout = request_timeout
        # The machine API's transport: its connection pool, its messages, its decoding.
        self._transport = MachineApiClient(url, request_timeout=timedelta(seconds=request_timeout))
        self._sent: dict[ChatSessionId, MessageId] = {}

    async def close(self) -> None:
        """Close the connections to the server."""
        await self._transport.close()

    # --- the API ------------------------------------------------------------------

    async def list_machines(self) -> list[MachineSummary]:
        """Your machines, oldest first, each with its workers counted by status."""
        body = await self._call("GET", "/api/machines")
        return self._structure(body["machines"], list[MachineSummary])

    async def list_workers(self, machine_id: MachineId | str) -> list[Worker]:
        """The workers of one of your machines."""
        body = await self._call("GET", f"/api/machines/{machine_id}/workers")
        return self._structure(body["workers"], list[Worker])

    async def start_session(self, worker_id: WorkerId | str, model: str) -> ChatSession:
        """A new chat session with the worker, answered by ``model`` (one of ``Worker.models``)."""
        body = await self._call("POST", f"/api/workers/{worker_id}/sessions", {"model": model})
        return self._structure(body["session"], ChatSession)

    async def send(self, session_id: ChatSessionId | str, text: str) -> ChatMessage:
        """Send a message; ``follow`` then streams its reply."""
        path = f"/api/sessions/{session_id}/messages"
        message = self._structure(
            (await self._call("POST", path, {"content": text}))["message"], ChatMessage
        )
        self._sent[message.chat_session_id] = message.message_id
        return message

    async def follow(
        self, session_id: ChatSessionId | str, message_id: MessageId | str | None = None
    ) -> AsyncIterator[str]:
        """The reply to ``message_id`` (default: the last one ``send`` sent there), as it streams.

        Yields text until the reply is complete; ends quietly if it was stopped
        (aborted), raises ``AgentUnavailable`` with the reason if it failed or was
        interrupted. A dropped stream is resumed where it left off. A reply waiting
        for a permission waits until someone answers it (in the web UI).
        """
        asked = MessageId(message_id) if message_id else self._sent.get(ChatSessionId(session_id))
        if asked is None:
            raise InvalidInput(NOTHING_SENT)
        reader = ReplyReader(asked)
        failures = 0
        while reader.finished is None:
            try:
                async with aclosing(self._events(session_id, reader.last_id)) as events:
                    async for event, data, event_id in events:
                        failures = 0
                        if event_id is not None:
                            reader.last_id = event_id
                        if event == "snapshot":
                            reader.last_id = None
                        for text in reader.feed(event, data):
                            yield text
                        if reader.finished is not None:
                            break
            except BackendUnavailable:
                failures += 1
                if failures > MAX_RECONNECTS:
                    raise
                await anyio.sleep(Backoff(cap=5.0).delay(failures))
        if reader.finished.status in (MessageStatus.FAILED, MessageStatus.INTERRUPTED):
            raise AgentUnavailable(reader.finished.error or REPLY_FAILED)

    # --- plumbing -------------------------------------------------------------------

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    @property
    def _unreachable(self) -> str:
        return self._transport._unreachable

    def _structure(self, value: object, kind: type[T]) -> T:
        return self._transport._structure(value, kind)

    async def _call(self, method: str, path: str, body: object = None) -> Mapping[str, Any]:
        status, text = await self._transport.request(method, path, body, self._headers)
        found = _json_or_none(text) if text else {}
        if status >= 400:
            raise error_from_body(status, found)
        if not isinstance(found, dict):
            raise BackendUnavailable(
                f"The server at {self.url} did not answer like `orchestrator serve`."
            )
        return found

    async def _events(
        self, session_id: str, after: int | None
    ) -> AsyncGenerator[tuple[str, Any, int | None], None]:
        """The session's Server-Sent Events as ``(event, data, id)``, from ``after`` on."""
        headers = {} if after is None else {"Last-Event-ID": str(after)}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.request_timeout, sock_read=STREAM_SILENCE_SECONDS
        )
        url = f"{self.url}/api/sessions/{session_id}/stream"
        try:
            async with self._transport._client().get(
                url, headers=headers | self._headers, timeout=timeout
            ) as response:
                if response.status >= 400:
                    raise error_from_body(response.status, _json_or_none(await response.text()))
                event, data, event_id = "message", "", None
                async for raw in response.content:
                    line = raw.decode("utf-8").rstrip("\r\n")
                    if not line:
                        if data:
                            yield event, json.loads(data), event_id
                        event, data, event_id = "message", "", None
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].lstrip(" ")
                    elif line.startswith("id:"):
                        event_id = int(line[3:].strip())
        except TimeoutError as exc:
            raise BackendUnavailable(f"The stream from {self.url} went silent.") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise BackendUnavailable(self._unreachable) from exc
        raise BackendUnavailable(f"The server at {self.url} ended the stream early.")

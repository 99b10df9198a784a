"""A typed async client of ``orchestrator serve``'s user API, signed in with an API token.

::

    async with orchestrator.Client("http://127.0.0.1:8080", token) as client:
        session = await client.start_session(worker_id, model)
        await client.send(session.chat_session_id, "Hello")
        async for text in client.follow(session.chat_session_id):
            print(text, end="", flush=True)

Each call but ``send`` and ``follow`` is generated from its route in
:mod:`orchestrator.adapters.browser_api`. Records arrive as the domain's own
(``MachineSummary``, ``Worker``, ``ChatSession``, ``ChatMessage``, ``Command``,
``Job``...) through the wire converter the server uses.
A refusal arrives as the domain exception the server raised, with its
sentence; a server that cannot be reached is ``BackendUnavailable``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Mapping
from contextlib import aclosing
from datetime import timedelta
from typing import Any, Final, ParamSpec, TypeVar, cast

import aiohttp
import anyio
import attrs

from orchestrator.adapters.browser_api import BROWSER_ROUTES, BrowserApi
from orchestrator.adapters.remote._declared import Declared
from orchestrator.adapters.remote._transport import Closing, MachineApiClient
from orchestrator.adapters.wire import converter, error_from_body
from orchestrator.application.retry import Backoff
from orchestrator.domain.api_tokens import ApiCredential
from orchestrator.domain.chat import ChatChunk, ChatMessage, MessageRole, MessageStatus
from orchestrator.domain.errors import AgentUnavailable, BackendUnavailable, InvalidInput
from orchestrator.domain.ids import ChatSessionId, MessageId

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

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


class _Route(Declared[BrowserApi, "Client", P, R]):
    """A :class:`BrowserApi` method as its route: ``client.<name>(...)`` calls it."""

    declared = BROWSER_ROUTES.keys()

    def _bind(self, client: Client) -> Callable[P, Coroutine[Any, Any, R]]:
        route = BROWSER_ROUTES[self.name]

        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            path, body = route.http(args, kwargs)
            found = await client._call(route.method, path, body)
            return client._structure(found[route.result_key], cast("type[R]", route.result))

        return call


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

    list_machines = _Route(BrowserApi.list_machines)
    list_workers = _Route(BrowserApi.list_workers)
    start_session = _Route(BrowserApi.start_session)
    send_message = _Route(BrowserApi.send_message)
    list_permissions = _Route(BrowserApi.list_permissions)
    answer_permission = _Route(BrowserApi.answer_permission)
    list_questions = _Route(BrowserApi.list_questions)
    answer_question = _Route(BrowserApi.answer_question)
    dismiss_question = _Route(BrowserApi.dismiss_question)
    create_command = _Route(BrowserApi.create_command)
    list_commands = _Route(BrowserApi.list_commands)
    get_command = _Route(BrowserApi.get_command)
    list_jobs = _Route(BrowserApi.list_jobs)
    create_job = _Route(BrowserApi.create_job)
    get_job = _Route(BrowserApi.get_job)
    run_job_now = _Route(BrowserApi.run_job_now)
    list_job_runs = _Route(BrowserApi.list_job_runs)

    async def send(self, session_id: ChatSessionId | str, text: str) -> ChatMessage:
        """Send a message; ``follow`` then streams its reply."""
        message = await self.send_message(session_id, text)
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

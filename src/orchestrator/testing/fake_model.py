"""A fake OpenAI-compatible model server, and a sandboxed opencode configuration for it.

Tests run the real ``opencode`` binary against :class:`FakeModelServer` on
loopback, so no network, key or real model is needed::

    async with FakeModelServer(reply="Hello there.") as model:
        env = opencode_environment(tmp_path, model.base_url)
        ...  # start ``opencode serve`` with ``env``; prompt "fake/fake-model"
        assert model.chat_requests[-1].user_texts[-1] == "hi"

The server answers ``POST /v1/chat/completions`` (streamed
``chat.completion.chunk`` SSE lines, or one JSON body when ``stream`` is false)
and ``GET /v1/models``. It recognises the title request opencode sends for a
new session and answers it with :attr:`FakeModelServer.title`. With
:attr:`FakeModelServer.bash_command` set it first asks for a ``bash`` tool call
and replies with :attr:`FakeModelServer.after_tool_reply` once the tool result
comes back -- enough to exercise opencode's permission prompts; with
:attr:`FakeModelServer.write_file` it calls opencode's ``write`` tool instead, and
with :attr:`FakeModelServer.questions` its ``question`` tool.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
from aiohttp import web

#: The provider and models :func:`opencode_environment` configures.
FAKE_PROVIDER = "fake"
FAKE_MODELS = ("fake-model", "fake-model-large")
DEFAULT_MODEL = f"{FAKE_PROVIDER}/{FAKE_MODELS[0]}"

Reply = str | Callable[[Sequence[Mapping[str, Any]]], str]

_WORD = re.compile(r"\S+\s*|\s+")


@attrs.frozen
class RecordedRequest:
    """One chat-completions request the fake model received."""

    body: Mapping[str, Any]
    is_title: bool

    @property
    def messages(self) -> list[Mapping[str, Any]]:
        return list(self.body.get("messages", []))

    @property
    def user_texts(self) -> list[str]:
        """The text of every user message in the request, oldest first."""
        return [_text_of(m) for m in self.messages if m.get("role") == "user"]

    @property
    def tool_results_this_turn(self) -> int:
        """Tool results since the last user message: how many calls of this turn have run."""
        count = 0
        for message in reversed(self.messages):
            if message.get("role") == "user":
                break
            count += message.get("role") == "tool"
        return count

    @property
    def has_tool_result(self) -> bool:
        """Whether the conversation ends with a tool result (the model must now answer)."""
        return bool(self.messages) and self.messages[-1].get("role") == "tool"


def _text_of(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    return ""


def split_deltas(text: str) -> list[str]:
    """Split ``text`` into the deltas the fake model streams: one word (plus spacing) each."""
    return _WORD.findall(text)


def _is_title_request(body: Mapping[str, Any]) -> bool:
    # opencode asks its small model for a title with a dedicated system prompt.
    for message in body.get("messages", []):
        if message.get("role") == "system" and "title" in _text_of(message).lower():
            return "tools" not in body or not body["tools"]
    return False


@attrs.define(eq=False)
class FakeModelServer:
    """An OpenAI-compatible streaming chat-completions server on 127.0.0.1.

    Attributes may be changed between prompts; every request is recorded in
    :attr:`requests` (title requests included, flagged ``is_title``).
    """

    reply: Reply = "Hello from the fake model."
    #: Seconds to wait before each streamed delta.
    delta_delay: float = 0.0
    #: When set, the first answer is a ``bash`` tool call running this command.
    bash_command: str | None = None
    #: When set (an absolute path and its content), the first answer is a call of
    #: opencode's ``write`` tool writing that file.
    write_file: tuple[str, str] | None = None
    #: When set, the first answer is a call of opencode's ``todowrite`` tool with this list
    #: (items of ``content``, ``status``, ``priority``).
    todos: list[dict[str, str]] | None = None
    #: When set, a turn calls these tools one after another (name and arguments, e.g.
    #: ``("read", {"filePath": …})``), then answers ``after_tool_reply``; it wins over
    #: the single-call attributes above.
    tool_calls: list[tuple[str, dict[str, Any]]] | None = None
    #: When set, the first answer is a call of opencode's ``question`` tool asking these
    #: (items of ``question``, ``header``, ``options`` of ``label``/``description`` …).
    questions: list[dict[str, Any]] | None = None
    #: Text streamed before the tool call of the first answer.
    before_tool_reply: str = ""
    after_tool_reply: str = "The command ran."
    title: str = "Fake session"
    #: When set, chat requests (not title requests) fail with this HTTP status.
    #: opencode retries 5xx, 404, 429 and "server error"-like messages with
    #: back-off, so use a 4xx such as 400 for an immediate failure.
    fail_status: int | None = None
    fail_message: str = "The fake model rejected the request on purpose."
    requests: list[RecordedRequest] = attrs.field(factory=list)
    _runner: web.AppRunner | None = attrs.field(default=None, init=False)
    _port: int | None = attrs.field(default=None, init=False)
    _counter: int = attrs.field(default=0, init=False)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("The fake model server is not started.")
        return self._port

    @property
    def base_url(self) -> str:
        """The ``baseURL`` an OpenAI-compatible client uses: ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """The requests that were not title requests, oldest first."""
        return [r for r in self.requests if not r.is_title]

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._port = server.sockets[0].getsockname()[1]
        self._runner = runner

    async def close(self) -> None:
        """Stop listening and drop open streams."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeModelServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": m, "object": "model", "owned_by": FAKE_PROVIDER} for m in FAKE_MODELS]
        return web.json_response({"object": "list", "data": data})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        record = RecordedRequest(body=body, is_title=_is_title_request(body))
        self.requests.append(record)
        if self.fail_status is not None and not record.is_title:
            error = {"message": self.fail_message, "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=self.fail_status)
        self._counter += 1
        completion_id = f"chatcmpl-fake-{self._counter}"
        model = str(body.get("model", FAKE_MODELS[0]))
        text, tool_call = self._answer(record)
        if not body.get("stream"):
            return web.json_response(_completion(completion_id, model, text, tool_call))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in _chunks(completion_id, model, text, tool_call):
            if self.delta_delay and _has_content(chunk):
                await asyncio.sleep(self.delta_delay)
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _answer(self, record: RecordedRequest) -> tuple[str, dict[str, Any] | None]:
        if record.is_title:
            return self.title, None
        if self.tool_calls is not None:
            done = record.tool_results_this_turn
            if done >= len(self.tool_calls):
                return self.after_tool_reply, None
            name, arguments = self.tool_calls[done]
            text = self.before_tool_reply if done == 0 else ""
            return text, {"name": name, "arguments": json.dumps(arguments)}
        call = self._tool_call()
        if call is not None:
            if record.has_tool_result:
                return self.after_tool_reply, None
            name, arguments = call
            return self.before_tool_reply, {"name": name, "arguments": json.dumps(arguments)}
        reply = self.reply if isinstance(self.reply, str) else self.reply(record.messages)
        return reply, None

    def _tool_call(self) -> tuple[str, dict[str, Any]] | None:
        if self.bash_command is not None:
            return "bash", {"command": self.bash_command, "description": "Run a command"}
        if self.write_file is not None:
            path, content = self.write_file
            return "write", {"filePath": path, "content": content}
        if self.todos is not None:
            return "todowrite", {"todos": self.todos}
        if self.questions is not None:
            return "question", {"questions": self.questions}
        return None


def _has_content(chunk: Mapping[str, Any]) -> bool:
    delta = chunk["choices"][0]["delta"] if chunk["choices"] else {}
    return bool(delta.get("content") or delta.get("tool_calls"))


def _envelope(completion_id: str, model: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }


def _chunks(
    completion_id: str, model: str, text: str, tool_call: Mapping[str, str] | None
) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return {**_envelope(completion_id, model), "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in split_deltas(text):
        yield chunk({"content": piece})
    if tool_call is not None:
        call = {
            "index": 0,
            "id": f"call_{completion_id}",
            "type": "function",
            "function": {"name": tool_call["name"], "arguments": tool_call["arguments"]},
        }
        yield chunk({"tool_calls": [call]})
    yield chunk({}, "tool_calls" if tool_call is not None else "stop")
    usage = {"prompt_tokens": 10, "completion_tokens": len(split_deltas(text)) or 1}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    yield {**_envelope(completion_id, model), "choices": [], "usage": usage}


def _completion(
    completion_id: str, model: str, text: str, tool_call: Mapping[str, str] | None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if tool_call is not None:
        message["tool_calls"] = [
            {"id": f"call_{completion_id}", "type": "function", "function": dict(tool_call)}
        ]
    finish = "tool_calls" if tool_call is not None else "stop"
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
    }


def opencode_config(
    base_url: str,
    *,
    models: Sequence[str] = FAKE_MODELS,
    permission: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An ``opencode.json`` that offers only the fake provider at ``base_url``."""
    return {
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            FAKE_PROVIDER: {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake model",
                "options": {"baseURL": base_url, "apiKey": "fake-key"},
                "models": {
                    m: {"name": m, "tool_call": True, "limit": {"context": 32000, "output": 4096}}
                    for m in models
                },
            }
        },
        "enabled_providers": [FAKE_PROVIDER],
        "model": f"{FAKE_PROVIDER}/{models[0]}",
        "small_model": f"{FAKE_PROVIDER}/{models[0]}",
        "autoupdate": False,
        "share": "disabled",
        "permission": dict(permission if permission is not None else {"bash": "ask"}),
    }


def opencode_environment(
    root: Path,
    base_url: str,
    *,
    models: Sequence[str] = FAKE_MODELS,
    permission: Mapping[str, str] | None = None,
    base_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Write a sandboxed opencode home under ``root`` and return the subprocess environment.

    ``HOME`` and every ``XDG_*`` directory point into ``root``, so opencode reads
    no user configuration and keeps its database there; the global
    ``opencode.json`` offers only the fake provider.
    """
    home = root / "home"
    dirs = {
        "HOME": home,
        "XDG_CONFIG_HOME": home / ".config",
        "XDG_DATA_HOME": home / ".local" / "share",
        "XDG_CACHE_HOME": home / ".cache",
        "XDG_STATE_HOME": home / ".local" / "state",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    config_dir = dirs["XDG_CONFIG_HOME"] / "opencode"
    config_dir.mkdir(parents=True, exist_ok=True)
    config = opencode_config(base_url, models=models, permission=permission)
    (config_dir / "opencode.json").write_text(json.dumps(config, indent=2))
    env = dict(base_env) if base_env is not None else _minimal_env()
    env.update({key: str(path) for key, path in dirs.items()})
    env.update(SANDBOX_FLAGS)
    return env


#: Environment flags that keep opencode off the network and away from user state.
SANDBOX_FLAGS = {
    "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_AUTOUPDATE": "1",
    "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
    "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    "OPENCODE_DISABLE_EXTERNAL_SKILLS": "1",
    "OPENCODE_DISABLE_PROJECT_CONFIG": "1",
}


def _minimal_env() -> dict[str, str]:
    import os

    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
    return {key: os.environ[key] for key in keep if key in os.environ}

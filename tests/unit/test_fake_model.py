"""The fake OpenAI-compatible model server and the sandboxed opencode config it ships with."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.testing.fake_model import (
    FAKE_MODELS,
    FakeModelServer,
    opencode_environment,
    split_deltas,
)

TITLE_SYSTEM = "You are a title generator. You output ONLY a thread title."


@pytest.fixture
async def fake_model() -> AsyncIterator[FakeModelServer]:
    async with FakeModelServer(reply="Hello there, friend.") as server:
        yield server


async def chat(server: FakeModelServer, **body: Any) -> tuple[int, list[dict[str, Any]]]:
    """POST a chat completion; return the status and the streamed chunks (or the JSON body)."""
    body.setdefault("model", "fake-model")
    body.setdefault("stream", True)
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            f"{server.base_url}/chat/completions",
            json=body,
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response,
    ):
        raw = await response.text()
        if not body["stream"] or response.status != 200:
            return response.status, [json.loads(raw)]
    lines = [line.removeprefix("data: ") for line in raw.split("\n\n") if line]
    assert lines[-1] == "[DONE]"
    return response.status, [json.loads(line) for line in lines[:-1]]


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        choice["delta"].get("content") or "" for chunk in chunks for choice in chunk["choices"]
    )


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


@pytest.mark.anyio
async def test_streams_the_reply_as_chunks(fake_model: FakeModelServer) -> None:
    """A streamed request gets chat.completion.chunk lines adding up to the reply, then stop."""
    status, chunks = await chat(fake_model, messages=[user("hi")])
    assert status == 200
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert streamed_text(chunks) == "Hello there, friend."
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    assert finishes == ["stop"]
    assert chunks[-1]["usage"]["total_tokens"] > 0


@pytest.mark.anyio
async def test_non_streaming_request_gets_one_completion(fake_model: FakeModelServer) -> None:
    """With stream=false the reply comes back as one chat.completion body."""
    status, (body,) = await chat(fake_model, stream=False, messages=[user("hi")])
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "Hello there, friend."


@pytest.mark.anyio
async def test_records_requests_and_user_texts(fake_model: FakeModelServer) -> None:
    """Every request is recorded, so a test can assert what history the model saw."""
    await chat(fake_model, messages=[user("one")])
    assistant = {"role": "assistant", "content": "ok"}
    parts = {"role": "user", "content": [{"type": "text", "text": "two"}]}
    await chat(fake_model, messages=[user("one"), assistant, parts])
    assert [r.user_texts for r in fake_model.chat_requests] == [["one"], ["one", "two"]]


@pytest.mark.anyio
async def test_answers_the_title_request(fake_model: FakeModelServer) -> None:
    """opencode's title request is answered with the title and flagged, not counted as chat."""
    fake_model.title = "Greeting"
    system = {"role": "system", "content": TITLE_SYSTEM}
    _, chunks = await chat(fake_model, messages=[system, user("hi")])
    assert streamed_text(chunks) == "Greeting"
    assert [r.is_title for r in fake_model.requests] == [True]
    assert fake_model.chat_requests == []


@pytest.mark.anyio
async def test_scripted_bash_call_then_final_text(fake_model: FakeModelServer) -> None:
    """With bash_command set the model first calls bash, then answers after the tool result."""
    fake_model.bash_command = "ls -la"
    tools = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
    _, chunks = await chat(fake_model, messages=[user("list")], tools=tools)
    calls = [
        call for c in chunks for ch in c["choices"] for call in ch["delta"].get("tool_calls") or []
    ]
    assert [c["function"]["name"] for c in calls] == ["bash"]
    assert json.loads(calls[0]["function"]["arguments"])["command"] == "ls -la"
    finishes = [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]]
    assert finishes == ["tool_calls"]
    result = {"role": "tool", "tool_call_id": calls[0]["id"], "content": "file.txt"}
    call_message = {"role": "assistant", "tool_calls": calls}
    _, chunks = await chat(fake_model, messages=[user("list"), call_message, result], tools=tools)
    assert streamed_text(chunks) == fake_model.after_tool_reply


@pytest.mark.anyio
async def test_a_turn_calls_its_tools_in_order_then_answers(fake_model: FakeModelServer) -> None:
    """With tool_calls set each answer is the next call of this turn, then the final text."""
    fake_model.tool_calls = [("read", {"filePath": "a"}), ("bash", {"command": "ls"})]
    earlier_turn = [user("before"), {"role": "tool", "content": "old"}]
    names = []
    messages: list[dict[str, Any]] = [*earlier_turn, user("go")]
    for _ in range(2):
        _, chunks = await chat(fake_model, messages=messages)
        [call] = [
            c for ch in chunks for x in ch["choices"] for c in x["delta"].get("tool_calls") or []
        ]
        names.append(call["function"]["name"])
        messages += [{"role": "assistant", "tool_calls": [call]}, {"role": "tool", "content": "ok"}]
    _, chunks = await chat(fake_model, messages=messages)
    assert names == ["read", "bash"]
    assert streamed_text(chunks) == fake_model.after_tool_reply


@pytest.mark.anyio
async def test_scripted_write_call_streams_text_then_the_tool_call(
    fake_model: FakeModelServer,
) -> None:
    """With write_file set the model says its preamble, then calls write with path and content."""
    fake_model.write_file = ("/work/notes.txt", "hello\n")
    fake_model.before_tool_reply = "Writing it. "
    tools = [{"type": "function", "function": {"name": "write", "parameters": {}}}]
    _, chunks = await chat(fake_model, messages=[user("write")], tools=tools)
    assert streamed_text(chunks) == "Writing it. "
    calls = [
        call for c in chunks for ch in c["choices"] for call in ch["delta"].get("tool_calls") or []
    ]
    assert [c["function"]["name"] for c in calls] == ["write"]
    arguments = json.loads(calls[0]["function"]["arguments"])
    assert arguments == {"filePath": "/work/notes.txt", "content": "hello\n"}


@pytest.mark.anyio
async def test_fail_status_returns_an_openai_error(fake_model: FakeModelServer) -> None:
    """With fail_status set, chat requests fail with that status and an OpenAI error body."""
    fake_model.fail_status = 400
    status, (body,) = await chat(fake_model, messages=[user("hi")])
    assert status == 400
    assert body["error"]["message"] == fake_model.fail_message


@pytest.mark.anyio
async def test_reply_may_depend_on_the_conversation(fake_model: FakeModelServer) -> None:
    """A callable reply is computed from the request's messages."""
    fake_model.reply = lambda messages: f"{len(messages)} messages"
    _, chunks = await chat(fake_model, messages=[user("a"), user("b")])
    assert streamed_text(chunks) == "2 messages"


@pytest.mark.anyio
async def test_lists_models(fake_model: FakeModelServer) -> None:
    """GET /v1/models lists the fake models."""
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{fake_model.base_url}/models") as response,
    ):
        body = await response.json()
    assert [m["id"] for m in body["data"]] == list(FAKE_MODELS)


def test_opencode_environment_is_sandboxed(tmp_path: Path) -> None:
    """The environment keeps opencode's home, config and data inside the given directory."""
    env = opencode_environment(tmp_path, "http://127.0.0.1:1234/v1", base_env={"PATH": "/bin"})
    for key in ("HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        assert Path(env[key]).is_relative_to(tmp_path)
    assert env["OPENCODE_DISABLE_MODELS_FETCH"] == "1"
    assert env["PATH"] == "/bin"
    config = json.loads((Path(env["XDG_CONFIG_HOME"]) / "opencode" / "opencode.json").read_text())
    fake = config["provider"]["fake"]
    assert fake["npm"] == "@ai-sdk/openai-compatible"
    assert fake["options"]["baseURL"] == "http://127.0.0.1:1234/v1"
    assert list(fake["models"]) == list(FAKE_MODELS)
    assert config["enabled_providers"] == ["fake"]
    assert config["permission"] == {"bash": "ask"}


@given(st.text())
def test_deltas_add_up_to_the_text(text: str) -> None:
    """However the text looks, its deltas concatenate back to it."""
    assert "".join(split_deltas(text)) == text

"""The opencode adapter against the real ``opencode`` binary and the fake model server."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from orchestrator.adapters.opencode import OpencodeRuntime, OpencodeSession, ProcessPolicy
from orchestrator.domain.agent import (
    AgentEvent,
    AgentSessionId,
    ModelRef,
    PermissionAnswer,
    PermissionAsked,
    TextDelta,
    TurnFailed,
    TurnFinished,
)
from orchestrator.domain.errors import NotFound
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from orchestrator.testing.fake_model import DEFAULT_MODEL, FakeModelServer
from tests.integration.harness import live_pids, opencode_runtime

#: The opencode runtime, the worker folder and the fake model are conftest.py's fixtures.
pytestmark = [pytest.mark.slow, pytest.mark.anyio]

MODEL = ModelRef.parse(DEFAULT_MODEL)
E = TypeVar("E")


async def collect_turn(session: OpencodeSession, timeout: float = 60) -> list[AgentEvent]:
    """Every event up to and including the end of the current turn."""
    events: list[AgentEvent] = []
    with anyio.fail_after(timeout):
        async for event in session.events():
            events.append(event)
            if isinstance(event, TurnFinished | TurnFailed):
                return events
    raise AssertionError(f"the session closed before the turn ended: {events}")


async def next_event(session: OpencodeSession, kind: type[E], timeout: float = 60) -> E:
    """The turn's next event of type ``kind``; the turn must not end before it."""
    with anyio.fail_after(timeout):
        async for event in session.events():
            if isinstance(event, kind):
                return event
            assert not isinstance(event, TurnFinished | TurnFailed), event
    raise AssertionError(f"the session closed before a {kind.__name__} came")


async def prompted(runtime: OpencodeRuntime, directory: Path, text: str) -> OpencodeSession:
    """A new session on ``directory``, sent ``text`` for MODEL."""
    session = await runtime.open_session(directory)
    await session.prompt(text, MODEL)
    return session


def text_of(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def asked_to_run(
    runtime: OpencodeRuntime, directory: Path, model: FakeModelServer, command: str
) -> tuple[OpencodeSession, PermissionAsked]:
    """A new session whose turn asks to run ``command`` in bash; the session and the request."""
    model.bash_command = command
    session = await prompted(runtime, directory, "Run something")
    return session, await next_event(session, PermissionAsked)


def process_group_alive(pgid: int) -> bool:
    """Whether a live process of process group ``pgid`` is left."""
    return bool(live_pids(lambda entry: _group_of(entry) == pgid))


def _group_of(entry: Path) -> int:
    """The process group of the process at ``/proc/<pid>``."""
    return int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2])


async def test_lists_the_configured_models(
    runtime: OpencodeRuntime, worker_directory: Path
) -> None:
    """list_models returns the fake provider's models as provider/model."""
    models = await runtime.list_models(worker_directory)
    assert [str(m) for m in models] == ["fake/fake-model", "fake/fake-model-large"]


async def test_the_models_and_the_first_message_come_from_one_warm_server(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """The server that listed the models stays warm and answers sessions, even after closes."""
    await runtime.list_models(worker_directory)
    (pid,) = runtime.server_pids()
    session = await prompted(runtime, worker_directory, "Say hello")
    assert text_of(await collect_turn(session)) == fake_model.reply
    await session.close()  # an idle timeout releases the session, not the warm server
    again = await runtime.open_session(worker_directory, session.agent_session_id)
    assert again.server.pid == pid
    assert runtime.server_pids() == [pid]
    await again.close()
    changed = PermissionPolicy(bash=PermissionAction.ALLOW)
    fresh = await runtime.open_session(worker_directory, permission_policy=changed)
    assert fresh.server.pid != pid  # the idle warm server restarted with the changed policy
    assert runtime.server_pids() == [fresh.server.pid]


async def test_prompt_streams_the_reply_in_order(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """A prompt streams deltas that add up to the model's text, then the turn finishes.

    Deltas that wait for the reader are merged, so the model pauses long enough between
    its pieces for the reader to take each as it comes.
    """
    fake_model.delta_delay = 0.1
    # The first turn of a fresh opencode may hold its deltas back and send them at once
    # (measured: four words 0.7 s late, together); a warm server streams them as they come.
    await collect_turn(await prompted(runtime, worker_directory, "Warm up"))
    session = await prompted(runtime, worker_directory, "Say hello")
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished)
    assert text_of(events) == fake_model.reply
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1
    assert {d.agent_session_id for d in deltas} == {session.agent_session_id}
    assert fake_model.chat_requests[-1].user_texts == ["Say hello"]


async def test_second_prompt_carries_the_history(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """The second prompt of a session reaches the model with the first exchange."""
    session = await prompted(runtime, worker_directory, "First question")
    await collect_turn(session)
    await session.prompt("Second question", MODEL)
    assert isinstance((await collect_turn(session))[-1], TurnFinished)
    last = fake_model.chat_requests[-1]
    assert last.user_texts == ["First question", "Second question"]
    assert any(m.get("role") == "assistant" for m in last.messages)
    history = await session.history()
    assert [(m.role, m.text) for m in history] == [
        ("user", "First question"),
        ("assistant", fake_model.reply),
        ("user", "Second question"),
        ("assistant", fake_model.reply),
    ]
    assert all(m.completed for m in history)


async def test_abort_stops_the_reply_mid_stream(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """Aborting after the first delta ends the turn as aborted, before the full text."""
    fake_model.reply = " ".join(f"word{i}" for i in range(100))
    fake_model.delta_delay = 0.05
    session = await prompted(runtime, worker_directory, "Talk for a while")
    events: list[AgentEvent] = []
    with anyio.fail_after(60):
        async for event in session.events():
            events.append(event)
            if isinstance(event, TextDelta):
                break
        await session.abort()
        events += await collect_turn(session)
    last = events[-1]
    assert isinstance(last, TurnFailed)
    assert last.aborted
    assert 0 < len(text_of(events)) < len(fake_model.reply)
    # The session is usable again afterwards.
    fake_model.reply, fake_model.delta_delay = "Back again.", 0.0
    await session.prompt("Still there?", MODEL)
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished)
    assert text_of(events) == "Back again."


async def test_bash_tool_call_asks_permission_then_finishes(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """A bash tool call raises PermissionAsked; answering once lets the turn finish."""
    session, asked = await asked_to_run(
        runtime, worker_directory, fake_model, "echo permitted > proof.txt"
    )
    assert asked.tool == "bash"
    assert asked.patterns == ("echo permitted > proof.txt",)
    assert "echo permitted" in asked.description
    await session.answer_permission(asked.request_id, PermissionAnswer.ONCE)
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished)
    assert text_of(events) == fake_model.after_tool_reply
    assert (worker_directory / "proof.txt").read_text().strip() == "permitted"
    assert fake_model.chat_requests[-1].has_tool_result


async def test_an_edit_permission_carries_the_file_and_its_diff(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """The real opencode's edit request names the file and carries its unified diff."""
    target = worker_directory / "notes.txt"
    fake_model.tool_calls = [("write", {"filePath": str(target), "content": "hello diff\n"})]
    session = await prompted(runtime, worker_directory, "Write a note")
    asked = await next_event(session, PermissionAsked)
    assert asked.tool == "edit"
    assert asked.file == str(target)
    assert "+hello diff" in asked.diff
    assert asked.diff_size == len(asked.diff.encode())
    await session.answer_permission(asked.request_id, PermissionAnswer.ONCE)
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished)
    assert target.read_text() == "hello diff\n"


async def test_rejected_permission_does_not_run_the_tool(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """Rejecting a bash permission never runs the command and still ends the turn."""
    session, asked = await asked_to_run(
        runtime, worker_directory, fake_model, "echo never > proof.txt"
    )
    await session.answer_permission(asked.request_id, PermissionAnswer.REJECT)
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFinished | TurnFailed)
    assert not (worker_directory / "proof.txt").exists()


async def test_two_sessions_stream_concurrently_on_one_server(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """Two sessions of one worker share one process and stream at the same time."""

    def echo(messages: object) -> str:
        assert isinstance(messages, list)
        last = [m for m in messages if m.get("role") == "user"][-1]
        content = last["content"]
        said = content if isinstance(content, str) else content[0]["text"]
        return f"You said {said} and nothing else, so this is the end of it."

    fake_model.reply = echo
    fake_model.delta_delay = 0.05
    first = await runtime.open_session(worker_directory)
    second = await runtime.open_session(worker_directory)
    assert len(runtime.server_pids()) == 1
    results: dict[str, list[AgentEvent]] = {}

    async def run(session: OpencodeSession, word: str) -> None:
        await session.prompt(word, MODEL)
        results[word] = await collect_turn(session)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run, first, "apple")
        tg.start_soon(run, second, "banana")
    assert text_of(results["apple"]) == echo([{"role": "user", "content": "apple"}])
    assert text_of(results["banana"]) == echo([{"role": "user", "content": "banana"}])
    assert {e.agent_session_id for e in results["apple"]} == {first.agent_session_id}
    assert {e.agent_session_id for e in results["banana"]} == {second.agent_session_id}


async def test_model_error_fails_the_turn_with_its_reason(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """An HTTP error from the model ends the turn with TurnFailed carrying the message."""
    fake_model.fail_status = 400
    session = await prompted(runtime, worker_directory, "Anything")
    events = await collect_turn(session)
    last = events[-1]
    assert isinstance(last, TurnFailed)
    assert not last.aborted
    assert fake_model.fail_message in last.reason
    # A later prompt is not polluted by the late repeats of that error.
    fake_model.fail_status = None
    await session.prompt("Again", MODEL)
    assert isinstance((await collect_turn(session))[-1], TurnFinished)


async def test_unknown_agent_session_is_not_found(
    runtime: OpencodeRuntime, worker_directory: Path
) -> None:
    """Continuing an agent session opencode does not know raises NotFound."""
    with pytest.raises(NotFound):
        await runtime.open_session(worker_directory, AgentSessionId("ses_doesnotexist"))
    assert runtime.server_pids() == []


async def test_closed_session_resumes_with_history(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """Closing the last session stops opencode; reopening by ID continues the conversation."""
    session = await prompted(runtime, worker_directory, "Remember me")
    await collect_turn(session)
    await session.close()
    assert runtime.server_pids() == []
    again = await runtime.open_session(worker_directory, session.agent_session_id)
    await again.prompt("Do you?", MODEL)
    assert isinstance((await collect_turn(again))[-1], TurnFinished)
    assert fake_model.chat_requests[-1].user_texts == ["Remember me", "Do you?"]


async def test_killed_server_fails_the_turn_and_restarts(
    runtime: OpencodeRuntime, worker_directory: Path, fake_model: FakeModelServer
) -> None:
    """If opencode dies mid-turn the turn fails; the next prompt starts a new process."""
    fake_model.reply = " ".join(f"word{i}" for i in range(100))
    fake_model.delta_delay = 0.05
    session = await runtime.open_session(worker_directory)
    (pid,) = runtime.server_pids()
    await session.prompt("Talk for a while", MODEL)
    with anyio.fail_after(60):
        async for event in session.events():
            if isinstance(event, TextDelta):
                break
    os.kill(pid, signal.SIGKILL)
    events = await collect_turn(session)
    assert isinstance(events[-1], TurnFailed)
    assert "stopped unexpectedly" in events[-1].reason
    fake_model.reply, fake_model.delta_delay = "Alive.", 0.0
    await session.prompt("Hello?", MODEL)
    events = await collect_turn(session)
    assert text_of(events) == "Alive."
    assert runtime.server_pids() != [pid]


async def test_stop_leaves_no_process_behind(
    tmp_path: Path, fake_model: FakeModelServer, worker_directory: Path
) -> None:
    """Leaving the runtime stops and reaps every opencode process and its children."""
    async with opencode_runtime(tmp_path / "sandbox", fake_model) as runtime:
        session = await prompted(runtime, worker_directory, "Hi")
        await collect_turn(session)
        pids = runtime.server_pids()
        assert len(pids) == 1
    assert runtime.server_pids() == []
    assert not Path(f"/proc/{pids[0]}").exists()
    assert not process_group_alive(pids[0])


async def test_per_session_policy_gives_each_session_its_process(
    tmp_path: Path, fake_model: FakeModelServer, worker_directory: Path
) -> None:
    """Under the per-session policy each session has its own process, stopped on close."""
    sandbox = tmp_path / "sandbox"
    async with opencode_runtime(sandbox, fake_model, policy=ProcessPolicy.PER_SESSION) as runtime:
        first = await runtime.open_session(worker_directory)
        second = await runtime.open_session(worker_directory)
        assert len(set(runtime.server_pids())) == 2
        for session in (first, second):
            await session.prompt("Hello", MODEL)
            events = await collect_turn(session)
            assert text_of(events) == fake_model.reply
        first_pid = first.server.pid
        await first.close()
        assert runtime.server_pids() == [second.server.pid]
        assert first_pid is not None
        assert not Path(f"/proc/{first_pid}").exists()

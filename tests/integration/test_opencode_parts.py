"""A real opencode turn that writes a file, stored as typed parts on the SQLite backend.

opencode (tools/opencode) runs against the fake model, which calls opencode's
``write`` tool and then answers; the machine's session manager stores what
opencode streams. The test reads the stored parts back as the web server would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orchestrator.adapters.embedded.backend import SQLiteBackend
from orchestrator.adapters.opencode._runtime import TODO_LIST_PART
from orchestrator.application.sessions import SessionManager, StreamSettings
from orchestrator.domain.chat import ChatMessage, MessageRole, MessageStatus
from orchestrator.domain.diffs import TurnDiffPart
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.parts import (
    MessagePart,
    PartBody,
    StepFinishPart,
    StepStartPart,
    TextPart,
    Todo,
    TodoListPart,
    ToolPart,
    ToolStatus,
)
from orchestrator.domain.permissions import PermissionAction, PermissionPolicy
from orchestrator.testing.fake_model import DEFAULT_MODEL, FakeModelServer
from tests.integration.harness import opencode_runtime, server_database

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

CONTENT = "hello from the agent\n"
BEFORE = "I will write the file. "
AFTER = "The file is written."


@attrs.define
class RecordingBackend:
    """The SQLite backend, keeping every part body the machine saved, in order."""

    inner: SQLiteBackend
    saved: list[tuple[str, PartBody]] = attrs.field(factory=list)

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        self.saved.append((part_id, body))
        return await self.inner.save_part(token, message_id, part_id, body)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[SQLiteBackend]:
    async with server_database(tmp_path, fast=True, poll_interval=0.05) as opened:
        yield opened


async def _reply(backend: SQLiteBackend, user: UserId, session_id: ChatSessionId) -> ChatMessage:
    with anyio.fail_after(90):
        while True:
            messages = await backend.list_messages(user, session_id)
            replies = [m for m in messages if m.role is MessageRole.ASSISTANT]
            if replies and replies[0].status.finished:
                return replies[0]
            await anyio.sleep(0.05)


@attrs.frozen
class Turn:
    """What one real turn left: its reply, the parts it stored, who asked."""

    reply: ChatMessage
    parts: list[MessagePart]
    saved: list[tuple[str, PartBody]]
    title: str | None


async def _run_turn(
    tmp_path: Path, backend: SQLiteBackend, model: FakeModelServer, prompt: str
) -> Turn:
    """One turn of real opencode against ``model``, driven by the machine's session manager."""
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir(exist_ok=True)
    user = await backend.create_user("alice", "hash")
    _, token = await backend.create_machine(user.user_id, "laptop")
    await backend.go_online(token, str(tmp_path))
    # The write tool needs the "edit" permission: the worker's policy allows it, so no
    # prompt stops the turn (the policy, not opencode's own config, decides).
    allow_edits = PermissionPolicy(edit=PermissionAction.ALLOW)
    worker = await backend.add_worker(
        user.user_id, token.machine_id, "worker", None, permission_policy=allow_edits
    )
    await backend.worker_heartbeat(token, worker.worker_id)
    worker = await backend.update_worker_models(token, worker.worker_id, [DEFAULT_MODEL])
    session = await backend.start_session(user.user_id, worker.worker_id, DEFAULT_MODEL)
    recording = RecordingBackend(backend)
    async with model:
        permission = {"edit": "allow", "bash": "ask"}
        async with (
            opencode_runtime(tmp_path / "sandbox", model, permission=permission) as runtime,
            anyio.create_task_group() as tg,
        ):
            manager = SessionManager(
                recording,
                token,
                runtime,
                workers=lambda: {worker.worker_id: backend_worker},
                directory=lambda _: worker_dir,
                settings=StreamSettings(coalesce_window=0.01, idle_timeout=timedelta(minutes=5)),
                report=lambda _: None,
            )
            backend_worker = (await backend.list_own_workers(token))[0]
            tg.start_soon(manager.run)
            await backend.send_message(user.user_id, session.chat_session_id, prompt)
            reply = await _reply(backend, user.user_id, session.chat_session_id)
            tg.cancel_scope.cancel()
    parts = await backend.list_parts(user.user_id, session.chat_session_id, reply.message_id)
    titled = await backend.get_session(user.user_id, session.chat_session_id)
    return Turn(reply, parts, recording.saved, titled.title)


async def test_a_turn_that_writes_a_file_is_stored_as_parts(
    tmp_path: Path, backend: SQLiteBackend
) -> None:
    """Text, the write tool through its states with input and output, and the step finish."""
    target = tmp_path / "worker" / "notes.txt"
    model = FakeModelServer(
        write_file=(str(target), CONTENT), before_tool_reply=BEFORE, after_tool_reply=AFTER
    )
    turn = await _run_turn(tmp_path, backend, model, "write notes.txt")
    reply, parts, saved = turn.reply, turn.parts, turn.saved

    assert reply.status is MessageStatus.COMPLETED, reply.error
    assert target.read_text() == CONTENT
    assert reply.content == BEFORE + AFTER

    # The write tool was saved as it moved, ending completed.
    states = [b.state.status for _, b in saved if isinstance(b, ToolPart)]
    assert states == [ToolStatus.PENDING, ToolStatus.RUNNING, ToolStatus.COMPLETED]

    bodies = [p.body for p in parts]
    assert [b.text for b in bodies if isinstance(b, TextPart)] == [BEFORE, AFTER]
    [tool] = [b for b in bodies if isinstance(b, ToolPart)]
    assert tool.tool == "write"
    assert json.loads(tool.state.input) == {"content": CONTENT, "filePath": str(target)}
    assert tool.state.status is ToolStatus.COMPLETED
    assert tool.state.output is not None
    assert tool.state.output_size == len(tool.state.output.encode())
    assert tool.state.started_at is not None
    assert tool.state.ended_at is not None
    assert tool.state.started_at <= tool.state.ended_at
    finishes = [b for b in bodies if isinstance(b, StepFinishPart)]
    assert len(finishes) == 2  # the tool call, then the answer
    assert [f.reason for f in finishes] == ["tool-calls", "stop"]
    assert all(f.tokens.input > 0 and f.tokens.output > 0 for f in finishes)
    # In the order opencode made them: step, text, tool, finish; step, answer, finish; changes.
    assert [type(b) for b in bodies] == [
        StepStartPart,
        TextPart,
        ToolPart,
        StepFinishPart,
        StepStartPart,
        TextPart,
        StepFinishPart,
        TurnDiffPart,  # read at the end: no files outside a git repository, but the turn's ID
    ]


TODOS = [
    {"content": "Read the <b>notes</b>", "status": "completed", "priority": "high"},
    {"content": "Write the tests", "status": "in_progress", "priority": "medium"},
]


async def test_a_todo_list_update_is_stored_as_a_todo_list_part(
    tmp_path: Path, backend: SQLiteBackend
) -> None:
    """opencode's todo.updated after a todowrite call is stored as the reply's todo-list part."""
    model = FakeModelServer(todos=TODOS, after_tool_reply="Planned.")
    turn = await _run_turn(tmp_path, backend, model, "plan the work")

    assert turn.reply.status is MessageStatus.COMPLETED, turn.reply.error
    lists = [p for p in turn.parts if isinstance(p.body, TodoListPart)]
    assert [p.part_id for p in lists] == [TODO_LIST_PART]
    assert lists[0].body == TodoListPart(
        (
            Todo("Read the <b>notes</b>", "completed", "high"),
            Todo("Write the tests", "in_progress", "medium"),
        )
    )
    [tool] = [p.body for p in turn.parts if isinstance(p.body, ToolPart)]
    assert (tool.tool, tool.state.status) == ("todowrite", ToolStatus.COMPLETED)
    # opencode made a title from the prompt (the fake model's) and the session took it.
    assert turn.title == model.title

"""The machine's session manager against the in-memory backend and a scripted agent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from orchestrator.application.retry import Backoff
from orchestrator.application.sessions import (
    ENDED_REASON,
    INTERRUPTED_REASON,
    SessionManager,
    StreamSettings,
    UnavailableRuntime,
)
from orchestrator.domain.agent import AgentCatalog, AgentRuntime
from orchestrator.domain.chat import (
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    MessageRole,
    MessageStatus,
    PermissionAnswer,
    PermissionStatus,
)
from orchestrator.domain.diffs import TURN_DIFF_PART, FileDiff, TurnDiffPart
from orchestrator.domain.errors import BackendUnavailable
from orchestrator.domain.ids import ChatSessionId, MachineToken, MessageId, UserId
from orchestrator.domain.live import LiveEvent, LiveText
from orchestrator.domain.model import Worker, WorkerStatus
from orchestrator.domain.parts import (
    StepFinishPart,
    TextPart,
    Tokens,
    ToolPart,
    ToolState,
    ToolStatus,
)
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionAction,
    PermissionPolicy,
)
from orchestrator.testing import InMemoryBackend
from orchestrator.testing.agent import (
    AskPermission,
    Crash,
    Fail,
    Say,
    ScriptedAgentRuntime,
    ShowPart,
    Step,
)
from orchestrator.testing.waiting import eventually, until

pytestmark = pytest.mark.anyio


@attrs.define
class World:
    backend: InMemoryBackend
    user: UserId
    token: MachineToken
    worker: Worker
    root: Path
    lines: list[str] = attrs.field(factory=list)

    async def session(self) -> ChatSession:
        return await self.backend.start_session(self.user, self.worker.worker_id, "fake/echo")

    def manager(self, runtime: AgentRuntime, idle: float = 60) -> SessionManager:
        return SessionManager(
            self.backend,
            self.token,
            runtime,
            workers=lambda: {self.worker.worker_id: self.backend.workers[self.worker.worker_id]},
            directory=lambda worker: self.root,
            settings=StreamSettings(coalesce_window=0.005, idle_timeout=timedelta(seconds=idle)),
            report=self.lines.append,
        )

    async def reply(self, session: ChatSession, index: int = 0) -> ChatMessage:
        """The ``index``-th assistant reply of the session once it has finished."""
        with anyio.fail_after(5):
            while True:
                messages = await self.backend.list_messages(self.user, session.chat_session_id)
                replies = [m for m in messages if m.role is MessageRole.ASSISTANT]
                if len(replies) > index and replies[index].status.finished:
                    return replies[index]
                await anyio.sleep(0.005)


async def undo_done(world: World, sid: ChatSessionId) -> bool:
    """Whether the session has no undo or redo waiting for the machine."""
    return not (await world.backend.get_session(world.user, sid)).undo_pending


@pytest.fixture
async def world(tmp_path: Path) -> World:
    backend = InMemoryBackend()
    user = await backend.create_user("alice", "plain$pw")
    _, token = await backend.create_machine(user.user_id, "laptop")
    await backend.go_online(token, str(tmp_path))
    worker = await backend.add_worker(user.user_id, token.machine_id, "", "root")
    await backend.worker_heartbeat(token, worker.worker_id)
    worker = await backend.update_worker_models(token, worker.worker_id, ["fake/echo"])
    return World(backend, user.user_id, token, worker, tmp_path)


@attrs.define
class Running:
    runtime: ScriptedAgentRuntime
    manager: SessionManager


def scripted(steps: Callable[[str], list[Step]]) -> ScriptedAgentRuntime:
    return ScriptedAgentRuntime(script=steps)


@asynccontextmanager
async def running(
    world: World, runtime: ScriptedAgentRuntime, idle: float = 60
) -> AsyncIterator[Running]:
    async with runtime, anyio.create_task_group() as tg:
        manager = world.manager(runtime, idle)
        tg.start_soon(manager.run)
        yield Running(runtime, manager)
        tg.cancel_scope.cancel()


async def test_a_message_streams_chunks_then_completes_with_the_whole_text(world: World) -> None:
    """The reply's chunks join to the agent's text, which is also the completed content."""
    session = await world.session()
    async with running(world, ScriptedAgentRuntime()):
        sent = await world.backend.send_message(world.user, session.chat_session_id, "hello there")
        reply = await world.reply(session)
    assert reply.status is MessageStatus.COMPLETED
    assert reply.content == "You said: hello there"
    assert reply.reply_to == sent.message_id
    chunks = [c for c in world.backend.chunks.values() if c.message_id == reply.message_id]
    assert "".join(c.chunk for c in sorted(chunks, key=lambda c: c.sequence)) == reply.content
    stored = await world.backend.get_session(world.user, session.chat_session_id)
    assert stored.agent_session_id is not None


async def test_messages_of_a_session_run_in_order_and_sessions_run_at_once(world: World) -> None:
    """Two sessions stream concurrently; each answers its own messages in the order sent."""
    runtime = scripted(lambda prompt: [Say(f"re:{prompt}", size=2, delay=0.002)])
    first, second = await world.session(), await world.session()
    async with running(world, runtime):
        for n in range(3):
            await world.backend.send_message(world.user, first.chat_session_id, f"a{n}")
            await world.backend.send_message(world.user, second.chat_session_id, f"b{n}")
        replies_a = [await world.reply(first, n) for n in range(3)]
        replies_b = [await world.reply(second, n) for n in range(3)]
    assert [r.content for r in replies_a] == ["re:a0", "re:a1", "re:a2"]
    assert [r.content for r in replies_b] == ["re:b0", "re:b1", "re:b2"]
    # The two sessions got distinct agent sessions.
    assert len({sid for sid, _, _ in runtime.prompts}) == 2


async def cut_short(
    world: World,
    runtime: ScriptedAgentRuntime,
    cut: Callable[[ChatSessionId], Any],
    settled: Callable[[], bool] = lambda: True,
) -> ChatMessage:
    """Send "go", *cut* the session once the reply streams; the reply it left once *settled*."""
    session = await world.session()
    sid = session.chat_session_id
    async with running(world, runtime):
        await world.backend.send_message(world.user, sid, "go")
        await until(lambda: world.backend.chunks)
        await cut(sid)
        reply = await world.reply(session)
        await until(settled)
    return reply


async def test_stop_aborts_the_running_reply_and_keeps_its_text(world: World) -> None:
    """Stop asks the agent to abort; the reply ends as aborted with what was streamed."""
    runtime = scripted(lambda _: [Say("x" * 400, size=1, delay=0.005)])
    reply = await cut_short(
        world, runtime, lambda sid: world.backend.request_abort(world.user, sid)
    )
    assert reply.status is MessageStatus.ABORTED
    assert 0 < len(reply.content) < 400
    assert runtime.aborts == 1


async def test_permission_is_recorded_answered_and_passed_on(world: World) -> None:
    """A tool call waits for the owner's answer, which reaches the agent; then the reply ends."""
    runtime = scripted(lambda _: [Say("checking "), AskPermission("bash", "ls"), Say("done")])
    session = await world.session()
    async with running(world, runtime):
        await world.backend.send_message(world.user, session.chat_session_id, "list files")
        pending = await eventually(
            lambda: world.backend.list_permissions(world.user, session.chat_session_id)
        )
        assert pending[0].tool == "bash"
        await world.backend.answer_permission(
            world.user, pending[0].permission_id, PermissionAnswer.ONCE
        )
        reply = await world.reply(session)
    assert reply.content == "checking done"
    assert [answer for _, answer in runtime.answers] == ["once"]
    [stored] = world.backend.permissions.values()
    assert stored.status is PermissionStatus.RESOLVED


async def test_an_edit_permission_is_stored_with_its_file_and_diff(world: World) -> None:
    """The agent's edit request reaches the backend with the file, the diff and its size."""
    diff = "@@ -1 +1 @@\n-old\n+né\n"
    runtime = scripted(lambda _: [AskPermission("edit", "a.py", "/w/a.py", diff), Say("ok")])
    session = await world.session()
    async with running(world, runtime):
        await world.backend.send_message(world.user, session.chat_session_id, "edit it")
        pending = await eventually(
            lambda: world.backend.list_permissions(world.user, session.chat_session_id)
        )
        assert (pending[0].tool, pending[0].file, pending[0].diff) == ("edit", "/w/a.py", diff)
        assert pending[0].diff_size == len(diff.encode())
        await world.backend.answer_permission(
            world.user, pending[0].permission_id, PermissionAnswer.REJECT
        )
        await world.reply(session)


async def test_agent_failure_fails_the_reply_and_the_session_stays_usable(world: World) -> None:
    """A model error fails one reply with its reason; the next message is answered."""
    answers: list[list[Step]] = [[Fail("The model is overloaded.")], [Crash()], [Say("fine")]]
    runtime = scripted(lambda _: answers.pop(0))
    session = await world.session()
    async with running(world, runtime):
        for text in ("one", "two", "three"):
            await world.backend.send_message(world.user, session.chat_session_id, text)
        failed, crashed, ok = [await world.reply(session, n) for n in range(3)]
    assert (failed.status, failed.error) == (MessageStatus.FAILED, "The model is overloaded.")
    assert crashed.status is MessageStatus.FAILED
    assert crashed.error is not None
    assert "stopped unexpectedly" in crashed.error
    assert ok.status is MessageStatus.COMPLETED
    # After the crash the same agent session was reopened, so the history continues.
    assert len({sid for sid, _, _ in runtime.prompts}) == 1


async def test_idle_session_releases_its_agent_and_resumes_with_history(world: World) -> None:
    """After the idle timeout the agent is closed and the session idle; the next message resumes."""
    runtime = ScriptedAgentRuntime()
    session = await world.session()
    async with running(world, runtime, idle=0.05):
        await world.backend.send_message(world.user, session.chat_session_id, "first")
        await world.reply(session)
        with anyio.fail_after(5):
            while (
                await world.backend.get_session(world.user, session.chat_session_id)
            ).status is not ChatSessionStatus.IDLE:
                await anyio.sleep(0.005)
        assert runtime.closed == 1
        await world.backend.send_message(world.user, session.chat_session_id, "second")
        second = await world.reply(session, 1)
    assert second.status is MessageStatus.COMPLETED
    [sid] = {sid for sid, _, _ in runtime.prompts}
    assert [text for role, text in runtime.history[sid] if role == "user"] == ["first", "second"]


async def test_a_reply_left_streaming_by_a_dead_process_is_marked_interrupted(world: World) -> None:
    """On start, a half-written reply is ended as interrupted (text kept) and the queue goes on."""
    session = await world.session()
    first = await world.backend.send_message(world.user, session.chat_session_id, "before crash")
    reply = await world.backend.claim_message(world.token, first.message_id)
    await world.backend.append_chunk(world.token, reply.message_id, "half a rep")
    await world.backend.send_message(world.user, session.chat_session_id, "after restart")
    async with running(world, ScriptedAgentRuntime()):
        interrupted = await world.reply(session, 0)
        answered = await world.reply(session, 1)
    assert interrupted.status is MessageStatus.INTERRUPTED
    assert interrupted.content == "half a rep"
    assert interrupted.error == INTERRUPTED_REASON
    assert answered.content == "You said: after restart"


async def test_ending_a_session_mid_reply_stops_it(world: World) -> None:
    """End session while streaming: the reply is aborted and the agent released."""
    runtime = scripted(lambda _: [Say("y" * 400, size=1, delay=0.005)])
    reply = await cut_short(
        world,
        runtime,
        lambda sid: world.backend.end_session(world.user, sid),
        settled=lambda: runtime.closed >= 1,
    )
    assert reply.status is MessageStatus.ABORTED
    assert reply.error in (ENDED_REASON, "Stopped.")


async def test_without_opencode_each_reply_says_how_to_install_it(world: World) -> None:
    """With no agent installed, a message fails with the install sentence instead of hanging."""
    session = await world.session()
    runtime = UnavailableRuntime("opencode is not installed. Run: npm install -g opencode-ai")
    async with anyio.create_task_group() as tg:
        tg.start_soon(world.manager(runtime).run)
        await world.backend.send_message(world.user, session.chat_session_id, "hi")
        reply = await world.reply(session)
        tg.cancel_scope.cancel()
    assert reply.status is MessageStatus.FAILED
    assert reply.error == "opencode is not installed. Run: npm install -g opencode-ai"


@attrs.define
class Flaky:
    """The in-memory backend with an outage: chosen calls fail as unreachable a few times."""

    inner: InMemoryBackend
    failures: dict[str, int]
    failed: dict[str, int] = attrs.field(factory=dict)
    #: Calls whose answer is lost after the backend did the work (as a dropped response).
    lost_answers: dict[str, int] = attrs.field(factory=dict)
    lost: dict[str, int] = attrs.field(factory=dict)

    def _maybe_fail(self, name: str) -> None:
        if self.failed.get(name, 0) < self.failures.get(name, 0):
            self.failed[name] = self.failed.get(name, 0) + 1
            raise BackendUnavailable("Cannot reach the server.")

    async def append_part_text(self, *args: Any) -> Any:
        self._maybe_fail("append_part_text")
        done = await self.inner.append_part_text(*args)
        if self.lost.get("append_part_text", 0) < self.lost_answers.get("append_part_text", 0):
            self.lost["append_part_text"] = self.lost.get("append_part_text", 0) + 1
            raise BackendUnavailable("The connection dropped before the answer arrived.")
        return done

    async def complete_message(self, *args: Any) -> Any:
        self._maybe_fail("complete_message")
        return await self.inner.complete_message(*args)

    async def watch_work(self, token: MachineToken) -> AsyncIterator[Any]:
        async for work in self.inner.watch_work(token):
            yield work
            self._maybe_fail("watch_work")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _reply_through(world: World, flaky: Flaky) -> tuple[ChatSession, ChatMessage]:
    """Send one message with ``flaky`` between the machine and the backend; its reply."""
    runtime = scripted(lambda _: [Say("abcdefghij" * 5, size=5, delay=0.002)])
    session = await world.session()
    async with runtime, anyio.create_task_group() as tg:
        manager = world.manager(runtime)
        manager.backend = flaky
        manager.backoff = Backoff(base=0.001, cap=0.01)
        tg.start_soon(manager.run)
        await world.backend.send_message(world.user, session.chat_session_id, "go")
        reply = await world.reply(session)
        tg.cancel_scope.cancel()
    return session, reply


async def test_an_outage_mid_reply_delays_it_but_loses_and_repeats_nothing(world: World) -> None:
    """Writes wait out an unreachable backend; the work feed reconnects; runners live on."""
    flaky = Flaky(world.backend, {"append_part_text": 3, "complete_message": 2, "watch_work": 2})
    _, reply = await _reply_through(world, flaky)
    assert reply.status is MessageStatus.COMPLETED
    assert reply.content == "abcdefghij" * 5
    chunks = sorted(
        (c for c in world.backend.chunks.values() if c.message_id == reply.message_id),
        key=lambda c: c.sequence,
    )
    assert "".join(c.chunk for c in chunks) == reply.content
    assert flaky.failed == {"append_part_text": 3, "complete_message": 2, "watch_work": 2}
    assert sum("Reconnecting in" in line for line in world.lines) >= 1
    assert "Reconnected." in world.lines


async def test_the_agent_opens_with_the_workers_policy_and_a_change_applies_next_time(
    world: World,
) -> None:
    """The worker's permission policy goes to open_session; a changed one on the next open."""
    runtime = ScriptedAgentRuntime()
    session = await world.session()
    async with running(world, runtime, idle=0.05):
        await world.backend.send_message(world.user, session.chat_session_id, "one")
        await world.reply(session, 0)
        assert runtime.policies == [DEFAULT_PERMISSION_POLICY]
        relaxed = PermissionPolicy(bash=PermissionAction.ALLOW)
        await world.backend.set_worker_permission_policy(
            world.user, world.worker.worker_id, relaxed
        )
        with anyio.fail_after(5):  # the idle timeout closes the agent session
            while runtime.closed == 0:
                await anyio.sleep(0.01)
        await world.backend.send_message(world.user, session.chat_session_id, "two")
        await world.reply(session, 1)
    assert runtime.policies == [DEFAULT_PERMISSION_POLICY, relaxed]


async def test_a_write_whose_answer_was_lost_is_resent_without_duplicating_text(
    world: World,
) -> None:
    """A text write retried after its answer was lost adds neither text nor a chunk twice."""
    flaky = Flaky(world.backend, {}, lost_answers={"append_part_text": 3})
    session, reply = await _reply_through(world, flaky)
    assert flaky.lost == {"append_part_text": 3}
    assert reply.content == "abcdefghij" * 5
    chunks = [c.chunk for c in world.backend.chunks.values() if c.message_id == reply.message_id]
    assert "".join(chunks) == reply.content
    [part] = await world.backend.list_parts(world.user, session.chat_session_id)
    assert part.body == TextPart(reply.content)


async def test_tool_and_step_parts_are_stored_in_order_with_the_text(world: World) -> None:
    """A tool part is replaced as its state moves; parts keep the order the agent sent them."""
    pending = ToolPart("write", "call_1", ToolState(ToolStatus.PENDING))
    done = ToolPart("write", "call_1", ToolState(ToolStatus.COMPLETED, "{}", "a.txt", "ok", 2))
    finish = StepFinishPart("stop", 0.0, Tokens(input=3, output=2))
    runtime = scripted(
        lambda _: [
            Say("Writing. "),
            ShowPart("prt_tool", pending),
            ShowPart("prt_tool", done),
            ShowPart("prt_step", finish),
        ]
    )
    session = await world.session()
    async with runtime, anyio.create_task_group() as tg:
        tg.start_soon(world.manager(runtime).run)
        await world.backend.send_message(world.user, session.chat_session_id, "go")
        reply = await world.reply(session)
        tg.cancel_scope.cancel()
    assert reply.content == "Writing. "
    parts = await world.backend.list_parts(world.user, session.chat_session_id)
    assert [(p.part_id, p.body) for p in parts] == [
        ("part", TextPart("Writing. ")),
        ("prt_tool", done),
        ("prt_step", finish),
    ]


async def test_work_waiting_for_an_offline_worker_runs_once_the_worker_is_back(
    world: World,
) -> None:
    """A message queued while its worker was offline is answered when the worker comes back."""
    session = await world.session()
    await world.backend.send_message(world.user, session.chat_session_id, "while away")
    offline = attrs.evolve(world.worker, status=WorkerStatus.OFFLINE)
    seen = {world.worker.worker_id: offline}
    runtime = ScriptedAgentRuntime()
    async with runtime, anyio.create_task_group() as tg:
        manager = world.manager(runtime)
        manager.workers = lambda: seen
        tg.start_soon(manager.run)
        await anyio.sleep(0.1)
        assert runtime.prompts == []  # the feed came while the worker was offline
        seen[world.worker.worker_id] = attrs.evolve(offline, status=WorkerStatus.ONLINE)
        manager.workers_changed()
        reply = await world.reply(session)
        tg.cancel_scope.cancel()
    assert (reply.status, reply.content) == (MessageStatus.COMPLETED, "You said: while away")


async def test_a_message_goes_to_its_agent_and_a_slash_command_runs_as_a_command(
    world: World,
) -> None:
    """The message's agent (else the session's) reaches the agent; /review runs the command."""
    token, worker_id = world.token, world.worker.worker_id
    await world.backend.update_worker_agents(
        token, worker_id, AgentCatalog(("build", "plan"), ("review",))
    )
    session = await world.backend.start_session(world.user, worker_id, "fake/echo", "plan")
    sid = session.chat_session_id
    async with running(world, ScriptedAgentRuntime()) as run:
        await world.backend.send_message(world.user, sid, "look around")
        await world.reply(session, 0)
        await world.backend.send_message(world.user, sid, "now build it", "build")
        await world.reply(session, 1)
        await world.backend.send_message(world.user, sid, "/review  the last commit ")
        await world.reply(session, 2)
        await world.backend.send_message(world.user, sid, "/unknown stays a prompt")
        await world.reply(session, 3)
    assert run.runtime.agents_used == ["plan", "build", "plan", "plan"]
    assert run.runtime.commands_run == [("review", "the last commit")]
    assert [text for _, text, _ in run.runtime.prompts][-1] == "/unknown stays a prompt"


async def test_the_files_a_turn_changed_are_stored_with_its_reply(world: World) -> None:
    """At the turn's end the agent's diff becomes the reply's turn-diff part; none without one."""
    session = await world.session()
    runtime = ScriptedAgentRuntime()
    async with running(world, runtime):
        await world.backend.send_message(world.user, session.chat_session_id, "nothing")
        first = await world.reply(session)
        runtime.turn_diff = TurnDiffPart("msg_9", (FileDiff("a.txt", "added", 1, 0, "+a\n", 3),))
        await world.backend.send_message(world.user, session.chat_session_id, "write a.txt")
        second = await world.reply(session, 1)
    parts = await world.backend.list_parts(world.user, session.chat_session_id)
    diffs = [(p.message_id, p.part_id, p.body) for p in parts if p.type == "turn-diff"]
    assert diffs == [(second.message_id, TURN_DIFF_PART, runtime.turn_diff)]
    assert first.status is second.status is MessageStatus.COMPLETED


async def undo_a_reply(world: World, session: ChatSession) -> None:
    """Send a message, undo its reply and wait until the machine has carried the undo out."""
    sid = session.chat_session_id
    await world.backend.send_message(world.user, sid, "write a.txt")
    reply = await world.reply(session)
    await world.backend.undo_turn(world.user, sid, reply.message_id)
    await eventually(lambda: undo_done(world, sid))


async def test_undo_and_redo_are_carried_out_on_the_agent_and_reported(world: World) -> None:
    """An undo reverts the agent to the reply's turn, a redo unreverts; each is reported done."""
    session = await world.session()
    runtime = ScriptedAgentRuntime(turn_diff=TurnDiffPart("msg_turn_1"))
    sid = session.chat_session_id
    async with running(world, runtime):
        await undo_a_reply(world, session)
        await world.backend.redo_turns(world.user, sid)
        await eventually(lambda: undo_done(world, sid))
    assert runtime.reverts == ["msg_turn_1", ""]
    stored = await world.backend.get_session(world.user, sid)
    assert (stored.undone_from, stored.undo_applied, stored.undo_error) == (None, 2, None)


async def test_an_undo_the_agent_refuses_is_reported_and_leaves_nothing_undone(
    world: World,
) -> None:
    """The agent's sentence comes back as the session's undo error; the reply is not undone."""
    session = await world.session()
    runtime = ScriptedAgentRuntime(turn_diff=TurnDiffPart("msg_turn_1"), undo_error="No git.")
    sid = session.chat_session_id
    async with running(world, runtime):
        await undo_a_reply(world, session)
    stored = await world.backend.get_session(world.user, sid)
    assert (stored.undone_from, stored.undo_error, runtime.reverts) == (None, "No git.", [])


@attrs.define
class KeptLive:
    """A live sink that is stored at once: records what it was sent and the replies it forgot."""

    sent: list[LiveEvent] = attrs.field(factory=list)
    forgotten: list[MessageId] = attrs.field(factory=list)

    async def run(self) -> None:
        await anyio.sleep_forever()

    async def send(self, event: LiveEvent) -> None:
        self.sent.append(event)

    async def drain(self, session_id: ChatSessionId) -> None:
        return None

    def forget(self, message_id: MessageId) -> None:
        self.forgotten.append(message_id)


async def test_the_live_channel_forgets_a_reply_once_it_completed_or_failed(
    world: World,
) -> None:
    """What the live channel keeps of a reply (its text) is dropped when the reply ends."""
    live = KeptLive()
    runtime = scripted(lambda text: [Fail("model down")] if text == "fail" else [Say("fine")])
    manager = attrs.evolve(world.manager(runtime), live=live)
    session = await world.session()
    async with runtime, anyio.create_task_group() as tg:
        tg.start_soon(manager.run)
        await world.backend.send_message(world.user, session.chat_session_id, "hello")
        done = await world.reply(session)
        await world.backend.send_message(world.user, session.chat_session_id, "fail")
        failed = await world.reply(session, 1)
        tg.cancel_scope.cancel()
    assert (done.status, failed.status) == (MessageStatus.COMPLETED, MessageStatus.FAILED)
    assert "".join(e.text for e in live.sent if isinstance(e, LiveText)) == "fine"
    assert live.forgotten == [done.message_id, failed.message_id]

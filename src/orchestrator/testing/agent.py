"""A scripted agent runtime: the ``AgentRuntime`` port without a real agent.

For unit tests and for load benchmarks where running dozens of opencode
processes is not the point. Replies follow a script; everything the runtime
was asked to do is kept for assertions. Stored sessions outlive ``close()``,
as opencode's do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import attrs

from orchestrator.domain.agent import (
    AgentCatalog,
    AgentEvent,
    AgentMessage,
    AgentSessionId,
    ModelRef,
    PartUpdated,
    PermissionAnswer,
    PermissionAsked,
    PermissionRequestId,
    QuestionAsked,
    QuestionRequestId,
    TextDelta,
    TurnFailed,
    TurnFinished,
)
from orchestrator.domain.diffs import TurnDiffPart
from orchestrator.domain.errors import AgentUnavailable, NotFound
from orchestrator.domain.parts import PartBody
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy
from orchestrator.domain.questions import Answers, Question, QuestionOption


@attrs.frozen
class Say:
    """Stream ``text`` in deltas of ``size`` characters, ``delay`` seconds apart."""

    text: str
    size: int = 4
    delay: float = 0.0


@attrs.frozen
class AskPermission:
    """Ask to run ``tool``; the script waits for the answer (a rejection ends the turn)."""

    tool: str = "bash"
    description: str = "echo hello"
    #: An ``edit``'s file and unified diff (sent whole: the script's diffs are small).
    file: str = ""
    diff: str = ""


@attrs.frozen
class AskQuestion:
    """Ask the user; the script waits, then says the answer (or that it was dismissed)."""

    questions: tuple[Question, ...] = (
        Question("Which colour?", "Colour", (QuestionOption("Red"), QuestionOption("Blue"))),
    )


@attrs.frozen
class Fail:
    """End the turn with a failure, as a model error would."""

    reason: str


@attrs.frozen
class ShowPart:
    """Send a part other than text (a tool call's state, a step finish …) whole."""

    part_id: str
    body: PartBody


@attrs.frozen
class Crash:
    """The agent dies: its event stream raises."""

    error: str = "agent process exited"


Step = Say | AskPermission | AskQuestion | Fail | ShowPart | Crash
#: Chooses the steps of a reply from the prompt.
Script = Callable[[str], list[Step]]


def echo_script(prompt: str) -> list[Step]:
    """Reply ``You said: <prompt>``."""
    return [Say(f"You said: {prompt}")]


@attrs.define(eq=False)
class ScriptedSession:
    runtime: ScriptedAgentRuntime
    agent_session_id: AgentSessionId
    worker_directory: Path
    closed: bool = False
    _send: anyio.abc.ObjectSendStream[AgentEvent | Crash] | None = None
    _receive: anyio.abc.ObjectReceiveStream[AgentEvent | Crash] | None = None
    _abort: anyio.Event = attrs.field(factory=anyio.Event)
    _answers: dict[str, PermissionAnswer] = attrs.field(factory=dict)
    _answered: anyio.Event = attrs.field(factory=anyio.Event)
    _permissions: int = 0
    _replies: dict[str, Answers | None] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[AgentEvent | Crash](1000)

    async def prompt(self, text: str, model: ModelRef, *, agent: str | None = None) -> None:
        self.runtime.agents_used.append(agent)
        self.runtime.prompts.append((self.agent_session_id, text, str(model)))
        self.runtime.history.setdefault(self.agent_session_id, []).append(("user", text))
        self._abort = anyio.Event()
        self.runtime.task_group.start_soon(self._play, self.runtime.script(text))

    async def command(
        self, name: str, arguments: str, model: ModelRef, *, agent: str | None = None
    ) -> None:
        self.runtime.commands_run.append((name, arguments))
        await self.prompt(f"/{name} {arguments}".rstrip(), model, agent=agent)

    async def _play(self, steps: list[Step]) -> None:
        assert self._send is not None
        sid, said, length = self.agent_session_id, [], 0
        for step in steps:
            if self._abort.is_set():
                break
            if isinstance(step, Say):
                for i in range(0, len(step.text), step.size):
                    if self._abort.is_set():
                        break
                    said.append(step.text[i : i + step.size])
                    await self._send.send(TextDelta(sid, "msg", "part", said[-1], length))
                    length += len(said[-1])
                    if step.delay:
                        await anyio.sleep(step.delay)
            elif isinstance(step, AskPermission):
                self._permissions += 1
                request = PermissionRequestId(f"per_{self._permissions}")
                await self._send.send(
                    PermissionAsked(
                        sid,
                        request,
                        step.tool,
                        (step.description,),
                        step.description,
                        step.file,
                        step.diff,
                        len(step.diff.encode()),
                    )
                )
                with anyio.move_on_after(60):
                    while request not in self._answers and not self._abort.is_set():
                        self._answered = anyio.Event()
                        await self._answered.wait()
                if self._answers.get(request) is PermissionAnswer.REJECT:
                    await self._send.send(TurnFailed(sid, "The permission was rejected."))
                    return
            elif isinstance(step, AskQuestion):
                self._permissions += 1
                asked = QuestionRequestId(f"que_{self._permissions}")
                await self._send.send(QuestionAsked(sid, asked, step.questions))
                with anyio.move_on_after(60):
                    while asked not in self._replies and not self._abort.is_set():
                        self._answered = anyio.Event()
                        await self._answered.wait()
                answers = self._replies.get(asked)
                heard = "dismissed" if answers is None else "; ".join(", ".join(a) for a in answers)
                said.append(f"You answered: {heard}.")
                await self._send.send(TextDelta(sid, "msg", "part", said[-1], length))
                length += len(said[-1])
            elif isinstance(step, ShowPart):
                await self._send.send(PartUpdated(sid, "msg", step.part_id, step.body))
            elif isinstance(step, Fail):
                await self._send.send(TurnFailed(sid, step.reason))
                return
            else:
                await self._send.send(step)
                return
        self.runtime.history[sid].append(("assistant", "".join(said)))
        if self._abort.is_set():
            await self._send.send(TurnFailed(sid, "Stopped.", aborted=True))
        else:
            await self._send.send(TurnFinished(sid))

    async def events(self) -> AsyncIterator[AgentEvent]:
        assert self._receive is not None
        async for event in self._receive:
            if isinstance(event, Crash):
                raise ConnectionError(event.error)
            yield event

    async def abort(self) -> None:
        self.runtime.aborts += 1
        self._abort.set()
        self._answered.set()

    async def answer_permission(
        self, request_id: PermissionRequestId, answer: PermissionAnswer
    ) -> None:
        self.runtime.answers.append((request_id, answer))
        self._answers[request_id] = answer
        self._answered.set()

    async def turn_diff(self) -> TurnDiffPart | None:
        return self.runtime.turn_diff

    async def revert(self, agent_message_id: str) -> None:
        if self.runtime.undo_error is not None:
            raise AgentUnavailable(self.runtime.undo_error)
        self.runtime.reverts.append(agent_message_id)

    async def unrevert(self) -> None:
        self.runtime.reverts.append("")

    async def answer_question(self, request_id: QuestionRequestId, answers: Answers | None) -> None:
        self.runtime.question_answers.append((request_id, answers))
        self._replies[request_id] = answers
        self._answered.set()

    async def history(self) -> list[AgentMessage]:
        return [
            AgentMessage(f"m{i}", role, text, completed=True)
            for i, (role, text) in enumerate(self.runtime.history.get(self.agent_session_id, []))
        ]

    async def close(self) -> None:
        self.closed = True
        self.runtime.closed += 1


@attrs.define(eq=False)
class ScriptedAgentRuntime:
    """Runs scripted replies; use inside ``async with`` so replies have a task group."""

    script: Script = echo_script
    models: list[str] = attrs.field(factory=lambda: ["fake/echo", "fake/other"])
    agents: list[str] = attrs.field(factory=lambda: ["build", "plan"])
    commands: list[str] = attrs.field(factory=lambda: ["review"])
    #: The agent each prompt named (None: the agent's default), and each slash command run.
    agents_used: list[str | None] = attrs.field(factory=list)
    commands_run: list[tuple[str, str]] = attrs.field(factory=list)
    prompts: list[tuple[AgentSessionId, str, str]] = attrs.field(factory=list)
    answers: list[tuple[PermissionRequestId, PermissionAnswer]] = attrs.field(factory=list)
    #: Answers to questions the agent was given, in order (None: dismissed).
    question_answers: list[tuple[QuestionRequestId, Answers | None]] = attrs.field(factory=list)
    history: dict[AgentSessionId, list[tuple[str, str]]] = attrs.field(factory=dict)
    opened: int = 0
    closed: int = 0
    aborts: int = 0
    stopped: bool = False
    #: What every turn changed, as the agent reports it at the turn's end.
    turn_diff: TurnDiffPart | None = None
    #: Turns reverted in order (their agent message IDs); ``""`` for each redo.
    reverts: list[str] = attrs.field(factory=list)
    #: When set, every revert fails with this sentence.
    undo_error: str | None = None
    #: The permission policy each open_session was given, in order.
    policies: list[PermissionPolicy] = attrs.field(factory=list)
    #: The permission policy each list_models call carried (an agent it starts keeps it).
    model_policies: list[PermissionPolicy] = attrs.field(factory=list)
    _task_group: anyio.abc.TaskGroup | None = None

    @property
    def task_group(self) -> anyio.abc.TaskGroup:
        if self._task_group is None:
            raise RuntimeError("Use the runtime inside `async with ScriptedAgentRuntime()`.")
        return self._task_group

    async def __aenter__(self) -> ScriptedAgentRuntime:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task_group is not None
        self._task_group.cancel_scope.cancel()
        await self._task_group.__aexit__(None, None, None)
        self._task_group = None

    async def list_models(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> list[ModelRef]:
        self.model_policies.append(permission_policy)
        return [ModelRef.parse(m) for m in self.models]

    async def list_agents(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> AgentCatalog:
        return AgentCatalog(tuple(self.agents), tuple(self.commands))

    async def open_session(
        self,
        worker_directory: Path,
        agent_session_id: AgentSessionId | None = None,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> ScriptedSession:
        self.policies.append(permission_policy)
        if agent_session_id is not None and agent_session_id not in self.history:
            raise NotFound(f"The agent has no session {agent_session_id}.")
        self.opened += 1
        sid = agent_session_id or AgentSessionId(f"ses_{self.opened:04d}")
        self.history.setdefault(sid, [])
        return ScriptedSession(self, sid, worker_directory)

    async def stop(self) -> None:
        self.stopped = True

"""The agent runtime port: how a machine process drives a coding agent (opencode).

A machine process opens one :class:`AgentSession` per chat session, in the
chat's *worker directory* (an absolute path on the machine). It sends a prompt
with a model named ``"provider/model"`` and reads the session's
:class:`AgentEvent`\\ s: text deltas as the reply is written, its other parts
(tool calls, step finishes …) whole as they change, permission requests,
status changes, and exactly one :class:`TurnFinished` or :class:`TurnFailed`
per prompt. Agent sessions outlive the runtime (opencode
stores them), so a chat can be continued later by its ``agent_session_id``.

Whether sessions share one agent process per worker directory or get one each
is the runtime's business, not the caller's.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import NewType, Protocol

import attrs

from orchestrator.domain.chat import PermissionAnswer as PermissionAnswer  # re-exported
from orchestrator.domain.diffs import TurnDiffPart
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.parts import PartBody, TextKind
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy
from orchestrator.domain.questions import Answers, Question

#: The agent's own ID of a session (opencode: ``ses_…``).
AgentSessionId = NewType("AgentSessionId", str)
#: The agent's ID of a pending permission request (opencode: ``per_…``).
PermissionRequestId = NewType("PermissionRequestId", str)
#: The agent's ID of a pending question (opencode: ``que_…``).
QuestionRequestId = NewType("QuestionRequestId", str)


@attrs.frozen
class ModelRef:
    """A model as ``"provider/model"``; the model part may itself contain ``/``."""

    provider: str
    model: str

    @classmethod
    def parse(cls, raw: str) -> ModelRef:
        """Parse ``"provider/model"``, refusing anything without both halves."""
        provider, sep, model = raw.partition("/")
        if not (sep and provider.strip() and model.strip()) or raw != raw.strip():
            raise InvalidInput(f"Model must look like 'provider/model', not {raw!r}.")
        return cls(provider, model)

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class AgentStatus(enum.StrEnum):
    BUSY = "busy"
    IDLE = "idle"
    #: The model call failed and the agent retries after a pause.
    RETRY = "retry"


@attrs.frozen
class TextDelta:
    """A piece of the reply's text, in order; ``part_id`` names the text block it extends."""

    agent_session_id: AgentSessionId
    message_id: str
    part_id: str
    text: str
    #: Where in the part the text goes (characters already in the part before it).
    offset: int = 0
    #: Reply text, or the model's reasoning (which is not part of the reply's text).
    kind: TextKind = TextKind.TEXT


@attrs.frozen
class PartUpdated:
    """A part of the reply other than text, whole as it is now (a tool call's state …)."""

    agent_session_id: AgentSessionId
    message_id: str
    part_id: str
    body: PartBody


@attrs.frozen
class PermissionAsked:
    """The agent waits for a yes/no before running a tool (``bash``, ``edit`` …)."""

    agent_session_id: AgentSessionId
    request_id: PermissionRequestId
    tool: str
    #: What the tool would touch, e.g. the shell command.
    patterns: tuple[str, ...]
    description: str
    #: The file an ``edit`` would change, and its unified diff (bounded; see ``diff_size``).
    file: str = ""
    diff: str = ""
    #: UTF-8 bytes of the whole diff, however much of it is kept.
    diff_size: int = 0


@attrs.frozen
class QuestionAsked:
    """The agent waits for the user to answer questions (opencode's ``question`` tool)."""

    agent_session_id: AgentSessionId
    request_id: QuestionRequestId
    questions: tuple[Question, ...]


@attrs.frozen
class SessionStatusChanged:
    agent_session_id: AgentSessionId
    status: AgentStatus
    #: Why the agent retries, for ``RETRY``.
    message: str | None = None


@attrs.frozen
class TurnFinished:
    """The reply to the last prompt is complete."""

    agent_session_id: AgentSessionId


@attrs.frozen
class TurnFailed:
    """The reply to the last prompt ended early; ``reason`` is one sentence for the user."""

    agent_session_id: AgentSessionId
    reason: str
    #: True when the turn was stopped by :meth:`AgentSession.abort`.
    aborted: bool = False


@attrs.frozen
class TitleChanged:
    """The agent gave the session a title (opencode: once it has made one from the prompt)."""

    agent_session_id: AgentSessionId
    title: str


AgentEvent = (
    TextDelta
    | PartUpdated
    | PermissionAsked
    | QuestionAsked
    | SessionStatusChanged
    | TurnFinished
    | TurnFailed
    | TitleChanged
)


@attrs.frozen
class AgentCatalog:
    """What a user may pick in a worker's directory: agents (modes) and slash commands."""

    agents: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()


def slash_command(content: str, commands: Sequence[str]) -> tuple[str, str] | None:
    """``(name, arguments)`` if ``content`` is ``/name args`` for one of ``commands``."""
    if not content.startswith("/"):
        return None
    name, _, arguments = content[1:].partition(" ")
    name = name.strip()
    if name not in commands:
        return None
    return name, arguments.strip()


@attrs.frozen
class AgentMessage:
    """A message of the agent's own history of a session."""

    message_id: str
    role: str
    text: str
    completed: bool
    error: str | None = None


class AgentSession(Protocol):
    """One conversation with the agent, bound to a worker directory."""

    @property
    def agent_session_id(self) -> AgentSessionId: ...

    @property
    def worker_directory(self) -> Path: ...

    async def prompt(self, text: str, model: ModelRef, *, agent: str | None = None) -> None:
        """Start a turn (with the named agent, if any); its events follow on :meth:`events`."""
        ...

    async def command(
        self, name: str, arguments: str, model: ModelRef, *, agent: str | None = None
    ) -> None:
        """Start a turn that runs the agent's slash command ``name`` with ``arguments``."""
        ...

    def events(self) -> AsyncIterator[AgentEvent]:
        """The session's events, from when it was opened, for a single reader."""
        ...

    async def abort(self) -> None:
        """Stop the current turn; it ends with ``TurnFailed(aborted=True)``."""
        ...

    async def answer_permission(
        self, request_id: PermissionRequestId, answer: PermissionAnswer
    ) -> None:
        """Reply to a :class:`PermissionAsked` of this session."""
        ...

    async def turn_diff(self) -> TurnDiffPart | None:
        """The files the last turn changed, read when it has ended (None before any turn)."""
        ...

    async def revert(self, agent_message_id: str) -> None:
        """Undo the turn of that prompt and every later one, their file changes included."""
        ...

    async def unrevert(self) -> None:
        """Redo what the last :meth:`revert` undid."""
        ...

    async def answer_question(self, request_id: QuestionRequestId, answers: Answers | None) -> None:
        """Answer a :class:`QuestionAsked` of this session (None: the user dismissed it)."""
        ...

    async def history(self) -> list[AgentMessage]:
        """The messages the agent has stored for this session, oldest first."""
        ...

    async def close(self) -> None:
        """Release the session's agent resources; the agent keeps its history."""
        ...


class AgentRuntime(Protocol):
    """Starts and stops the coding agent for the workers of one machine."""

    async def list_models(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> list[ModelRef]:
        """The models the agent offers in this directory.

        An agent process started to answer gets ``permission_policy`` and may
        stay running for the directory's sessions.
        """
        ...

    async def list_agents(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> AgentCatalog:
        """The agents a user may choose and the slash commands offered in this directory."""
        ...

    async def open_session(
        self,
        worker_directory: Path,
        agent_session_id: AgentSessionId | None = None,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> AgentSession:
        """A new agent session, or the stored one with ``agent_session_id`` (NotFound if gone).

        An agent process started for it gets ``permission_policy``; an idle one
        running with another policy is restarted with it, a busy one keeps its own.
        """
        ...

    async def stop(self) -> None:
        """Close every session and stop every agent process."""
        ...

"""The machine's ports (machines, chat, directory commands) as a client of ``orchestrator serve``.

Every method is one call of the machine API in :mod:`.wire`; subscriptions
ride its WebSocket. Errors the server raised arrive as the same domain
exception with the same message; a server that cannot be reached is
:class:`~orchestrator.domain.errors.BackendUnavailable`. Subscriptions survive
dropped connections and server restarts (see :class:`._transport.MachineApiClient`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from orchestrator.adapters.parts_json import body_to_dict
from orchestrator.adapters.remote._commands import CommandClient
from orchestrator.adapters.remote.wire import (
    SUBSCRIPTION_OWN_WORKERS,
    SUBSCRIPTION_WORK,
    converter,
    lease_fields,
)
from orchestrator.domain.chat import (
    ChatChunk,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    MessageStatus,
    PermissionRequest,
    SessionWork,
)
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineToken,
    MessageId,
    PermissionId,
    QuestionId,
    WorkerId,
    WorkerToken,
)
from orchestrator.domain.lease import Lease
from orchestrator.domain.model import Machine, Worker
from orchestrator.domain.parts import MessagePart, PartBody, TextAppended, TextKind
from orchestrator.domain.questions import Question, QuestionRequest


class RemoteMachineBackend(CommandClient):
    """The backend of a machine process whose server is ``orchestrator serve`` at ``server_url``.

    ``timeouts`` (e.g. ``MachineSettings``) gives the per-call timeout and the
    reconnect backoff cap; keyword arguments override it.
    """

    # --- MachineBackend ---------------------------------------------------------

    async def authenticate(self, token: MachineToken) -> Machine:
        """The machine the token belongs to; raises AuthenticationFailed if wrong."""
        return self._structure(await self._call("authenticate", token), Machine)

    async def go_online(
        self, token: MachineToken, root_directory: str, lease: Lease | None = None
    ) -> Machine:
        """Mark the machine online and record its root directory and heartbeat."""
        value = await self._call(
            "go_online", token, root_directory=root_directory, **lease_fields(lease)
        )
        return self._structure(value, Machine)

    async def heartbeat(self, token: MachineToken, lease: Lease | None = None) -> Machine:
        """Record that the machine is alive (and online)."""
        return self._structure(await self._call("heartbeat", token, **lease_fields(lease)), Machine)

    async def go_offline(self, token: MachineToken, lease: Lease | None = None) -> None:
        """Mark the machine and all its workers offline."""
        await self._call("go_offline", token, **lease_fields(lease))

    async def list_own_workers(self, token: MachineToken) -> list[Worker]:
        """Every worker of this machine, pending ones included."""
        return self._structure(await self._call("list_own_workers", token), list[Worker])

    async def register_worker(
        self, token: MachineToken, worker_token: WorkerToken, directory: str, name: str | None
    ) -> Worker:
        """Create a worker from an issued worker token; it waits for approval."""
        value = await self._call(
            "register_worker",
            token,
            worker_token=str(worker_token),
            directory=directory,
            name=name,
        )
        return self._structure(value, Worker)

    async def worker_heartbeat(self, token: MachineToken, worker_id: WorkerId) -> Worker:
        """Mark an approved worker online and record its heartbeat."""
        value = await self._call("worker_heartbeat", token, worker_id=worker_id)
        return self._structure(value, Worker)

    async def worker_offline(
        self, token: MachineToken, worker_id: WorkerId, problem: str | None = None
    ) -> Worker:
        """Mark an approved worker offline; ``problem`` says why the machine cannot run it."""
        value = await self._call("worker_offline", token, worker_id=worker_id, problem=problem)
        return self._structure(value, Worker)

    async def update_worker_models(
        self, token: MachineToken, worker_id: WorkerId, models: Sequence[str]
    ) -> Worker:
        """Replace the list of models the worker's agent offers."""
        value = await self._call(
            "update_worker_models", token, worker_id=worker_id, models=list(models)
        )
        return self._structure(value, Worker)

    async def update_worker_agents(
        self,
        token: MachineToken,
        worker_id: WorkerId,
        agents: Sequence[str],
        commands: Sequence[str],
    ) -> Worker:
        """Replace the agents (modes) and slash commands the worker's agent offers."""
        value = await self._call(
            "update_worker_agents",
            token,
            worker_id=worker_id,
            agents=list(agents),
            commands=list(commands),
        )
        return self._structure(value, Worker)

    async def watch_own_workers(self, token: MachineToken) -> AsyncIterator[list[Worker]]:
        """The machine's workers, now and after every change; survives reconnects."""
        async for value in self.subscribe(token, SUBSCRIPTION_OWN_WORKERS):
            yield self._structure(value, list[Worker])

    # --- ChatMachineBackend -------------------------------------------------------

    async def watch_work(self, token: MachineToken) -> AsyncIterator[list[SessionWork]]:
        """Sessions of the machine's workers that need something done; survives reconnects."""
        async for value in self.subscribe(token, SUBSCRIPTION_WORK):
            yield self._structure(value, list[SessionWork])

    async def list_session_messages(
        self, token: MachineToken, session_id: ChatSessionId
    ) -> list[ChatMessage]:
        """A session's messages (history for an agent that lost its own)."""
        value = await self._call("list_session_messages", token, session_id=session_id)
        return self._structure(value, list[ChatMessage])

    async def claim_message(self, token: MachineToken, message_id: MessageId) -> ChatMessage:
        """Take a pending user message; returns the new ``streaming`` assistant reply."""
        value = await self._call("claim_message", token, message_id=message_id)
        return self._structure(value, ChatMessage)

    async def append_chunk(
        self, token: MachineToken, message_id: MessageId, text: str
    ) -> ChatChunk:
        """Add streamed text to a reply; the backend assigns the next session sequence."""
        value = await self._call("append_chunk", token, message_id=message_id, text=text)
        return self._structure(value, ChatChunk)

    async def save_part(
        self, token: MachineToken, message_id: MessageId, part_id: str, body: PartBody
    ) -> MessagePart:
        """Store a part of a streaming reply whole: created, or replaced as it moves."""
        value = await self._call(
            "save_part", token, message_id=message_id, part_id=part_id, body=body_to_dict(body)
        )
        return self._structure(value, MessagePart)

    async def append_part_text(
        self,
        token: MachineToken,
        message_id: MessageId,
        part_id: str,
        offset: int,
        text: str,
        kind: TextKind = TextKind.TEXT,
    ) -> TextAppended:
        """Grow a text/reasoning part at ``offset``; new reply text is also streamed as a chunk."""
        value = await self._call(
            "append_part_text",
            token,
            message_id=message_id,
            part_id=part_id,
            offset=offset,
            text=text,
            kind=kind.value,
        )
        return self._structure(value, TextAppended)

    async def complete_message(
        self, token: MachineToken, message_id: MessageId, content: str
    ) -> ChatMessage:
        """End a reply successfully with its whole text (written once)."""
        value = await self._call("complete_message", token, message_id=message_id, content=content)
        return self._structure(value, ChatMessage)

    async def end_reply(
        self, token: MachineToken, message_id: MessageId, status: MessageStatus, reason: str
    ) -> ChatMessage:
        """End a reply as failed, interrupted or aborted, keeping the text streamed so far."""
        value = await self._call(
            "end_reply", token, message_id=message_id, status=status.value, reason=reason
        )
        return self._structure(value, ChatMessage)

    async def update_session(
        self,
        token: MachineToken,
        session_id: ChatSessionId,
        *,
        status: ChatSessionStatus | None = None,
        agent_session_id: str | None = None,
        title: str | None = None,
    ) -> ChatSession:
        """Record the agent's session ID, a title, or active/idle."""
        value = await self._call(
            "update_session",
            token,
            session_id=session_id,
            status=status.value if status is not None else None,
            agent_session_id=agent_session_id,
            title=title,
        )
        return self._structure(value, ChatSession)

    async def report_undo(
        self, token: MachineToken, session_id: ChatSessionId, applied: int, error: str | None
    ) -> ChatSession:
        """The undo/redo requests up to ``applied`` are carried out (or failed with ``error``)."""
        value = await self._call(
            "report_undo", token, session_id=session_id, applied=applied, error=error
        )
        return self._structure(value, ChatSession)

    async def record_permission(
        self,
        token: MachineToken,
        message_id: MessageId,
        agent_request_id: str,
        tool: str,
        description: str,
        *,
        file: str = "",
        diff: str = "",
        diff_size: int = 0,
    ) -> PermissionRequest:
        """The agent asks permission during a reply; the user sees it as pending."""
        value = await self._call(
            "record_permission",
            token,
            message_id=message_id,
            agent_request_id=agent_request_id,
            tool=tool,
            description=description,
            file=file,
            diff=diff,
            diff_size=diff_size,
        )
        return self._structure(value, PermissionRequest)

    async def resolve_permission(
        self, token: MachineToken, permission_id: PermissionId
    ) -> PermissionRequest:
        """The answer was passed on to the agent."""
        value = await self._call("resolve_permission", token, permission_id=permission_id)
        return self._structure(value, PermissionRequest)

    async def record_question(
        self,
        token: MachineToken,
        message_id: MessageId,
        agent_request_id: str,
        questions: Sequence[Question],
    ) -> QuestionRequest:
        """The agent asks the user questions during a reply; the user sees them as pending."""
        value = await self._call(
            "record_question",
            token,
            message_id=message_id,
            agent_request_id=agent_request_id,
            questions=converter.unstructure(list(questions)),
        )
        return self._structure(value, QuestionRequest)

    async def resolve_question(
        self, token: MachineToken, question_id: QuestionId
    ) -> QuestionRequest:
        """The answer (or dismissal) was passed on to the agent."""
        value = await self._call("resolve_question", token, question_id=question_id)
        return self._structure(value, QuestionRequest)

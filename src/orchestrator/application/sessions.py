"""The machine's session manager: chat work from the backend, run on agent sessions.

One runner per chat session processes its user messages strictly in order;
runners of different sessions run at once. Everything a runner needs is in
the backend's work feed, so a restarted machine carries on where it stopped:
a reply that was streaming when the process died is marked interrupted (its
streamed text kept), and the next pending message is processed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar

import anyio
import attrs

from orchestrator.application.retry import (
    Backoff,
    Connection,
    keep_reachable,
    retry_until_reachable,
)
from orchestrator.application.streaming import LiveTextStream, PartTextStream, TextStream
from orchestrator.domain.agent import (
    AgentCatalog,
    AgentEvent,
    AgentRuntime,
    AgentSession,
    AgentSessionId,
    ModelRef,
    PartUpdated,
    PermissionAsked,
    PermissionRequestId,
    QuestionAsked,
    QuestionRequestId,
    TextDelta,
    TitleChanged,
    TurnFailed,
    TurnFinished,
    slash_command,
)
from orchestrator.domain.chat import (
    MAX_TITLE_LENGTH,
    ChatMessage,
    ChatSession,
    ChatSessionStatus,
    MessageStatus,
    SessionUpdate,
    SessionWork,
)
from orchestrator.domain.diffs import TURN_DIFF_PART
from orchestrator.domain.errors import AgentUnavailable, Conflict, NotFound, OrchestratorError
from orchestrator.domain.ids import (
    ChatSessionId,
    MachineToken,
    MessageId,
    PermissionId,
    QuestionId,
    WorkerId,
)
from orchestrator.domain.live import LivePart
from orchestrator.domain.model import Worker, WorkerStatus
from orchestrator.domain.parts import PartBody, PartId, TextAppend, TextKind
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy
from orchestrator.domain.ports import ChatMachineBackend, LiveSink
from orchestrator.domain.replies import PermissionAsk, QuestionAsk

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What the agent asks its user (a permission or a question), as the backend records it.
A = TypeVar("A")

INTERRUPTED_REASON = "The machine process stopped while this reply was being written."
ENDED_REASON = "The session was ended."
CRASHED_REASON = "The agent stopped unexpectedly: {error}"


#: The folder a worker runs in, or None where it has none (yet).
WorkerDirectory = Callable[[Worker], Path | None]


@attrs.define
class StreamSettings:
    """How replies are streamed and when idle sessions are released."""

    coalesce_window: float = 0.05
    coalesce_max_chars: int = 4000
    idle_timeout: timedelta = timedelta(minutes=5)


@attrs.define
class SessionRunner:
    """Processes one chat session's messages in order, on one agent session."""

    manager: SessionManager
    session_id: ChatSessionId
    work: SessionWork
    wake: anyio.Event = attrs.field(factory=anyio.Event)
    agent: AgentSession | None = None
    events: AsyncIterator[AgentEvent] | None = None
    current_reply: ChatMessage | None = None
    #: Why the runner stops if it is cancelled mid-reply.
    stop_reason: str = INTERRUPTED_REASON
    _abort_sent: bool = False
    #: Messages this runner has acted on; the feed may still show them for a moment.
    _handled: set[MessageId] = attrs.field(factory=set)
    _passed_on: set[PermissionId | QuestionId] = attrs.field(factory=set)
    #: Undo/redo requests of the session this runner has carried out.
    _undo_done: int = 0

    def update(self, work: SessionWork) -> None:
        self.work = work
        self.wake.set()

    async def run(self) -> None:
        idle_after = self.manager.settings.idle_timeout.total_seconds()
        try:
            while True:
                self.wake = anyio.Event()
                if await self._step():
                    continue
                with anyio.move_on_after(idle_after) as timer:
                    await self.wake.wait()
                if timer.cancelled_caught:
                    await self._go_idle()
                    await self.wake.wait()
        finally:
            with anyio.CancelScope(shield=True):
                if self.current_reply is not None:
                    status = (
                        MessageStatus.ABORTED
                        if self.stop_reason == ENDED_REASON
                        else MessageStatus.INTERRUPTED
                    )
                    await self.manager.end_reply(self.current_reply, status, self.stop_reason)
                await self._close_agent()

    async def _step(self) -> bool:
        """Do the next thing the session needs; False when there is nothing to do."""
        work = self.work
        if self.current_reply is not None:
            return False
        streaming = work.streaming_reply
        if streaming is not None and streaming.message_id not in self._handled:
            # Left over from a process that died: never resumed silently, never lost.
            self._handled.add(streaming.message_id)
            await self.manager.end_reply(streaming, MessageStatus.INTERRUPTED, INTERRUPTED_REASON)
            return True
        session = work.session
        if session.undo_pending and session.undo_requests > self._undo_done:
            await self._undo(session)
            return True
        pending = [m for m in work.pending_messages if m.message_id not in self._handled]
        if pending:
            self._handled.add(pending[0].message_id)
            await self._run_turn(pending[0])
            return True
        return False

    async def _undo(self, session: ChatSession) -> None:
        """Undo or redo turns on the agent as the owner asked, then report it done (or why not)."""
        requested, error = session.undo_requests, None
        try:
            agent = await self._ensure_agent()
            if session.undo_agent_id is not None:
                await agent.revert(session.undo_agent_id)
            else:
                await agent.unrevert()
        except OrchestratorError as exc:
            error = exc.message
        manager = self.manager
        await manager.call(
            partial(manager.backend.report_undo, manager.token, self.session_id, requested, error)
        )
        self._undo_done = requested

    async def control(self) -> None:
        """React to Stop and to permission answers while a reply streams."""
        work = self.work
        reply = work.streaming_reply
        agent = self.agent
        if agent is None or reply is None or self.current_reply is None:
            return
        if reply.message_id != self.current_reply.message_id:
            return
        if reply.abort_requested and not self._abort_sent:
            self._abort_sent = True
            await agent.abort()
        backend, token = self.manager.backend, self.manager.token
        for permission in work.answered_permissions:
            if permission.answer is not None:
                await self._pass_on(
                    permission.permission_id,
                    partial(
                        agent.answer_permission,
                        PermissionRequestId(permission.agent_request_id),
                        permission.answer,
                    ),
                    partial(backend.resolve_permission, token, permission.permission_id),
                )
        for question in work.answered_questions:
            await self._pass_on(
                question.question_id,
                partial(
                    agent.answer_question,
                    QuestionRequestId(question.agent_request_id),
                    question.answers,
                ),
                partial(backend.resolve_question, token, question.question_id),
            )

    async def _pass_on(
        self,
        request_id: PermissionId | QuestionId,
        answer: Callable[[], Awaitable[None]],
        resolve: Callable[[], Awaitable[object]],
    ) -> None:
        """Give the agent the user's answer once, then mark the request resolved."""
        if request_id in self._passed_on:
            return
        self._passed_on.add(request_id)
        await answer()
        await self.manager.call(resolve)

    async def _ensure_agent(self) -> AgentSession:
        if self.agent is not None:
            return self.agent
        session = self.work.session
        directory = self.manager.directory_of(session.worker_id)
        policy = self.manager.permission_policy_of(session.worker_id)
        stored = AgentSessionId(session.agent_session_id) if session.agent_session_id else None
        open_session = partial(self.manager.runtime.open_session, permission_policy=policy)
        try:
            agent = await open_session(directory, stored)
        except NotFound:
            agent = await open_session(directory, None)
        self.agent = agent
        self.events = agent.events()
        if agent.agent_session_id != session.agent_session_id:
            await self.manager.call(
                partial(
                    self.manager.backend.update_session,
                    self.manager.token,
                    self.session_id,
                    SessionUpdate(
                        agent_session_id=agent.agent_session_id, status=ChatSessionStatus.ACTIVE
                    ),
                )
            )
        return agent

    async def _run_turn(self, message: ChatMessage) -> None:
        manager = self.manager
        try:
            reply = await manager.call(
                partial(manager.backend.claim_message, manager.token, message.message_id)
            )
        except Conflict:
            return  # Claimed already (e.g. by an earlier run); the feed tells us what next.
        self.current_reply = reply
        self._handled.add(reply.message_id)
        self._abort_sent = False
        text: list[str] = []
        try:
            agent = await self._ensure_agent()
            session = self.work.session
            model, chosen = ModelRef.parse(session.model), message.agent or session.agent
            command = slash_command(message.content, manager.commands_of(session.worker_id))
            if command is None:
                await agent.prompt(message.content, model, agent=chosen)
            else:
                await agent.command(*command, model, agent=chosen)
            async with (
                manager.text_stream(reply)
                if manager.live
                else PartTextStream(
                    lambda part_id, kind, offset, piece: manager.call(
                        partial(
                            manager.backend.append_part_text,
                            manager.token,
                            reply.message_id,
                            TextAppend(part_id, offset, piece, kind),
                        )
                    ),
                    window=manager.settings.coalesce_window,
                    max_chars=manager.settings.coalesce_max_chars,
                ) as chunks
            ):
                outcome = await self._follow(agent, chunks, text)
            # A stopped or failed turn may have changed files too.
            await self._store_turn_diff(agent)
            if isinstance(outcome, TurnFinished):
                await manager.drain(self.session_id)
                await manager.call(
                    partial(
                        manager.backend.complete_message,
                        manager.token,
                        reply.message_id,
                        "".join(text),
                    )
                )
                manager.forget(reply.message_id)
            else:
                status = MessageStatus.ABORTED if outcome.aborted else MessageStatus.FAILED
                await manager.end_reply(reply, status, outcome.reason)
        except OrchestratorError as exc:
            await self._close_agent()
            await manager.end_reply(reply, MessageStatus.FAILED, exc.message)
        except Exception as exc:
            log.exception("agent failed")
            await self._close_agent()
            await manager.end_reply(reply, MessageStatus.FAILED, CRASHED_REASON.format(error=exc))
        self.current_reply = None

    async def _follow(
        self, agent: AgentSession, chunks: TextStream, text: list[str]
    ) -> TurnFinished | TurnFailed:
        events = self.events
        assert events is not None
        async for event in events:
            outcome = await self._handle(event, chunks, text)
            if outcome is not None:
                return outcome
        raise ConnectionError("the agent's event stream ended")

    async def _handle(
        self, event: AgentEvent, chunks: TextStream, text: list[str]
    ) -> TurnFinished | TurnFailed | None:
        manager = self.manager
        if isinstance(event, TextDelta):
            if event.kind is TextKind.TEXT:
                text.append(event.text)
            await chunks.add(event.part_id, event.kind, event.offset, event.text)
        elif isinstance(event, PartUpdated):
            await chunks.flush()  # parts keep the order the agent made them in
            await self._store_part(event.part_id, event.body)
        elif isinstance(event, PermissionAsked):
            ask = PermissionAsk(
                event.request_id,
                event.tool,
                event.description or " ".join(event.patterns),
                event.file,
                event.diff,
                event.diff_size,
            )
            await self._ask_user(chunks, manager.backend.record_permission, ask)
        elif isinstance(event, QuestionAsked):
            question = QuestionAsk(event.request_id, event.questions)
            await self._ask_user(chunks, manager.backend.record_question, question)
        elif isinstance(event, TitleChanged) and event.title.strip():
            await manager.call(
                partial(
                    manager.backend.update_session,
                    manager.token,
                    self.session_id,
                    SessionUpdate(title=event.title[:MAX_TITLE_LENGTH]),
                )
            )
        elif isinstance(event, TurnFinished | TurnFailed):
            return event
        return None

    async def _ask_user(
        self,
        chunks: TextStream,
        record: Callable[[MachineToken, MessageId, A], Awaitable[object]],
        ask: A,
    ) -> None:
        """Record what the agent asks its user, after everything the reply streamed before it."""
        manager, reply = self.manager, self.current_reply
        await chunks.flush()
        assert reply is not None
        await manager.drain(self.session_id)
        await manager.call(partial(record, manager.token, reply.message_id, ask))

    async def _store_part(self, part_id: str, body: PartBody) -> None:
        """Store a part of the current reply: live when the machine has a channel, else saved."""
        manager, reply = self.manager, self.current_reply
        assert reply is not None
        if manager.live is not None:
            await manager.live.send(
                LivePart(reply.chat_session_id, reply.message_id, PartId(part_id), body)
            )
            return
        await manager.call(
            partial(manager.backend.save_part, manager.token, reply.message_id, part_id, body)
        )

    async def _store_turn_diff(self, agent: AgentSession) -> None:
        """The files the turn changed, read from the agent once it ended, as the reply's part."""
        try:
            diff = await agent.turn_diff()
        except OrchestratorError as exc:
            log.info("could not read the turn's changes: %s", exc)
            return
        if diff is not None:  # also without files: it names the agent's turn, for undo
            await self._store_part(TURN_DIFF_PART, diff)

    async def _go_idle(self) -> None:
        if self.agent is None:
            return
        await self._close_agent()
        try:
            await self.manager.call(
                partial(
                    self.manager.backend.update_session,
                    self.manager.token,
                    self.session_id,
                    SessionUpdate(status=ChatSessionStatus.IDLE),
                )
            )
        except OrchestratorError as exc:
            log.info("could not mark session idle: %s", exc)
        self.manager.report(f"Session {self.session_id} is idle; its agent was released.")

    async def _close_agent(self) -> None:
        agent, self.agent, self.events = self.agent, None, None
        if agent is not None:
            with anyio.move_on_after(10):
                await agent.close()


@attrs.define
class SessionManager:
    """Runs the chat sessions of one machine's online workers."""

    backend: ChatMachineBackend
    token: MachineToken
    runtime: AgentRuntime
    workers: Callable[[], Mapping[WorkerId, Worker]]
    directory: WorkerDirectory
    settings: StreamSettings = attrs.field(factory=StreamSettings)
    report: Callable[[str], None] = print
    backoff: Backoff = attrs.field(factory=Backoff)
    #: The machine process's connection, so an outage is reported once for all loops.
    connection: Connection = attrs.field(
        default=attrs.Factory(lambda self: Connection(self.report), takes_self=True)
    )
    #: Where reply events go live (a remote server); None: written to ``backend`` directly.
    live: LiveSink | None = None
    runners: dict[ChatSessionId, SessionRunner] = attrs.field(factory=dict)
    _scopes: dict[ChatSessionId, anyio.CancelScope] = attrs.field(factory=dict)
    #: The latest feed, applied again when a worker's status changes (see workers_changed).
    _feed: list[SessionWork] | None = None
    _recheck: anyio.Event = attrs.field(factory=anyio.Event)
    _applying: anyio.Lock = attrs.field(factory=anyio.Lock)

    def directory_of(self, worker_id: WorkerId) -> Path:
        worker = self.workers().get(worker_id)
        path = self.directory(worker) if worker is not None else None
        if path is None:
            raise NotFound("The worker's directory is missing on this machine.")
        return path

    def commands_of(self, worker_id: WorkerId) -> tuple[str, ...]:
        """The slash commands the worker's agent offers, as its record says now."""
        worker = self.workers().get(worker_id)
        return worker.commands if worker is not None else ()

    def permission_policy_of(self, worker_id: WorkerId) -> PermissionPolicy:
        """The worker's permission policy as its record says now (the safe one if unknown)."""
        worker = self.workers().get(worker_id)
        return worker.permission_policy if worker is not None else DEFAULT_PERMISSION_POLICY

    def _runnable(self, work: SessionWork) -> bool:
        worker = self.workers().get(work.session.worker_id)
        return worker is not None and worker.status is WorkerStatus.ONLINE

    async def call(self, write: Callable[[], Awaitable[T]]) -> T:
        """A backend call that waits out an unreachable backend instead of failing the reply."""
        return await retry_until_reachable(write, self.backoff, self.connection)

    def workers_changed(self) -> None:
        """A worker came online or went away: which sessions may run depends on it too."""
        self._recheck.set()

    async def run(self) -> None:
        """Follow the work feed until cancelled; runners live on while it reconnects."""
        async with anyio.create_task_group() as tg:
            if self.live is not None:
                tg.start_soon(self.live.run)

            async def follow() -> None:
                async for feed in self.backend.watch_work(self.token):
                    self.connection.back()
                    self._feed = feed
                    await self.apply(feed, tg)

            async def recheck() -> None:
                # The feed changes only with the sessions' work, not with the workers'
                # status: a worker back online must not leave its queued messages waiting.
                while True:
                    await self._recheck.wait()
                    self._recheck = anyio.Event()
                    if self._feed is not None:
                        await self.apply(self._feed, tg)

            tg.start_soon(recheck)
            await keep_reachable(follow, self.backoff, self.connection)

    async def apply(self, feed: list[SessionWork], tg: anyio.abc.TaskGroup) -> None:
        """Start, update or stop runners to match the feed."""
        async with self._applying:
            await self._apply(feed, tg)

    async def _apply(self, feed: list[SessionWork], tg: anyio.abc.TaskGroup) -> None:
        live = {w.session.chat_session_id: w for w in feed if self._runnable(w)}
        feed_ids = {w.session.chat_session_id for w in feed}
        for session_id in set(self.runners) - set(live):
            stopped = self.runners.pop(session_id)
            if session_id not in feed_ids:
                stopped.stop_reason = ENDED_REASON
            self._scopes.pop(session_id).cancel()
        for session_id, work in live.items():
            runner = self.runners.get(session_id)
            if runner is None:
                runner = SessionRunner(self, session_id, work)
                self.runners[session_id] = runner
                tg.start_soon(self._run_runner, runner)
            else:
                runner.update(work)
            try:
                await runner.control()
            except OrchestratorError as exc:
                self.report(f"Session {session_id}: {exc.message}")

    async def _run_runner(self, runner: SessionRunner) -> None:
        with anyio.CancelScope() as scope:
            self._scopes[runner.session_id] = scope
            await runner.run()

    def text_stream(self, reply: ChatMessage) -> LiveTextStream:
        """Reply text sent live, delta by delta (the server batches the writes)."""
        assert self.live is not None
        return LiveTextStream(self.live, reply.chat_session_id, reply.message_id)

    async def drain(self, session_id: ChatSessionId) -> None:
        """Until every live event of the session is stored (nothing to wait for without one)."""
        if self.live is not None:
            await self.live.drain(session_id)

    async def end_reply(self, reply: ChatMessage, status: MessageStatus, reason: str) -> None:
        await self.drain(reply.chat_session_id)
        with contextlib.suppress(Conflict):  # already ended, e.g. by a terminated session
            await self.call(
                partial(self.backend.end_reply, self.token, reply.message_id, status, reason)
            )
        self.forget(reply.message_id)

    def forget(self, message_id: MessageId) -> None:
        """Drop what the live channel keeps of a reply that ended (all of it stored by now)."""
        if self.live is not None:
            self.live.forget(message_id)


@attrs.define
class UnavailableRuntime:
    """Stands in when the agent cannot run here: every reply fails with ``reason``."""

    reason: str

    async def list_models(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> list[ModelRef]:
        raise AgentUnavailable(self.reason)

    async def list_agents(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> AgentCatalog:
        raise AgentUnavailable(self.reason)

    async def open_session(
        self,
        worker_directory: Path,
        agent_session_id: AgentSessionId | None = None,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> AgentSession:
        raise AgentUnavailable(self.reason)

    async def stop(self) -> None:
        return None

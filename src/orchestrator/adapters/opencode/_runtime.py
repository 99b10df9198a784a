"""The opencode implementation of :class:`~orchestrator.domain.agent.AgentRuntime`."""

from __future__ import annotations

import enum
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.abc

from orchestrator.adapters.opencode._events import EventQueue
from orchestrator.adapters.opencode._parts import part_body, todo_list, turn_diff
from orchestrator.adapters.opencode._server import Event, OpencodeServer, find_opencode
from orchestrator.adapters.system import child_environment
from orchestrator.domain.agent import (
    AgentCatalog,
    AgentEvent,
    AgentMessage,
    AgentSessionId,
    AgentStatus,
    ModelRef,
    PartUpdated,
    PermissionAnswer,
    PermissionAsked,
    PermissionRequestId,
    QuestionAsked,
    QuestionRequestId,
    SessionStatusChanged,
    TextDelta,
    TitleChanged,
    TurnFailed,
    TurnFinished,
)
from orchestrator.domain.diffs import MAX_DIFF_BYTES, TurnDiffPart, is_binary_patch
from orchestrator.domain.errors import AgentUnavailable, InvalidInput, NotFound, OrchestratorError
from orchestrator.domain.parts import TextKind, clip_utf8
from orchestrator.domain.permissions import DEFAULT_PERMISSION_POLICY, PermissionPolicy
from orchestrator.domain.questions import Answers, Question, QuestionOption

T = TypeVar("T")

#: Flags every spawned opencode gets unless the caller's environment says otherwise.
DEFAULT_FLAGS = {"OPENCODE_DISABLE_AUTOUPDATE": "1"}

ABORTED_REASON = "The reply was stopped."
DIED_REASON = "opencode stopped unexpectedly."
#: opencode's placeholder title until it has made one ("New session - <ISO time>").
DEFAULT_TITLE = re.compile(r"^(New|Child) session - \d{4}-\d\d-\d\dT")
#: The part ID a reply keeps the agent's todo list under (one per reply, replaced on change).
TODO_LIST_PART = "todo-list"
#: How often, and how far apart, a turn's diff is read again while opencode stores it.
DIFF_RETRIES = 20
DIFF_RETRY_DELAY = 0.1


class ProcessPolicy(enum.StrEnum):
    """How chat sessions map to ``opencode serve`` processes.

    ``SHARED`` is the default: measured here (``benchmarks/opencode_policies.py``,
    3 sessions) it opens a further session in ~20-40 ms instead of ~2.6-3.5 s,
    reaches the first delta of a first prompt in ~0.4-0.7 s instead of ~2.1 s,
    and needs ~240 MB per session instead of ~570-620 MB.
    """

    #: One ``opencode serve`` per worker directory; its chat sessions share it.
    SHARED = "shared"
    #: One ``opencode serve`` per chat session (the original design).
    PER_SESSION = "per_session"


class _Phase(enum.Enum):
    IDLE = "idle"
    #: Prompt accepted; waiting for opencode to report the session busy.
    SENT = "sent"
    RUNNING = "running"


class OpencodeSession:
    """A chat's agent session on an opencode server; see :class:`AgentSession`."""

    def __init__(
        self, runtime: OpencodeRuntime, server: OpencodeServer, session_id: AgentSessionId
    ) -> None:
        self._runtime = runtime
        self.server = server
        self._id = session_id
        self._events = EventQueue()
        self._phase = _Phase.IDLE
        self._error: str | None = None
        self._aborted = False
        self._status: AgentStatus | None = None
        #: Text and reasoning parts of replies by ID, and how much text each has had.
        self._text_parts: dict[str, TextKind] = {}
        self._text_length: dict[str, int] = {}
        #: The agent's IDs of the assistant messages (replies) of this session.
        self._replies: set[str] = set()
        self._last_reply: str | None = None
        #: The agent's ID of the prompt (user message) the last reply answers.
        self._last_prompt: str | None = None
        #: Whether the last turn reported changed files (a ``patch`` part).
        self._patched = False
        self._title: str | None = None
        self._lock = anyio.Lock()
        self.closed = False

    @property
    def agent_session_id(self) -> AgentSessionId:
        return self._id

    @property
    def worker_directory(self) -> Path:
        return self.server.directory

    @property
    def busy(self) -> bool:
        """Whether a turn is in progress."""
        return self._phase is not _Phase.IDLE

    async def prompt(self, text: str, model: ModelRef, *, agent: str | None = None) -> None:
        """Start a turn with ``text``; restarts opencode first if it had stopped."""
        if self.busy:
            raise InvalidInput("Wait for the current reply to finish before sending another.")
        server = await self._live_server()
        body: dict[str, Any] = {
            "model": {"providerID": model.provider, "modelID": model.model},
            "parts": [{"type": "text", "text": text}],
        }
        if agent is not None:
            body["agent"] = agent
        self._phase, self._error, self._aborted = _Phase.SENT, None, False
        self._patched = False
        try:
            await server.request("POST", f"/session/{self._id}/prompt_async", body=body)
        except BaseException:
            self._phase = _Phase.IDLE
            raise

    async def command(
        self, name: str, arguments: str, model: ModelRef, *, agent: str | None = None
    ) -> None:
        """Run opencode's slash command ``name``; the turn's events follow as for a prompt."""
        if self.busy:
            raise InvalidInput("Wait for the current reply to finish before sending another.")
        server = await self._live_server()
        body: dict[str, Any] = {"command": name, "arguments": arguments, "model": str(model)}
        if agent is not None:
            body["agent"] = agent
        self._phase, self._error, self._aborted = _Phase.SENT, None, False
        # opencode answers this route only when the turn is over; the events tell the rest.
        self._runtime._tg.start_soon(self._run_command, server, body)

    async def _run_command(self, server: OpencodeServer, body: dict[str, Any]) -> None:
        try:
            await server.request("POST", f"/session/{self._id}/command", body=body, whole_turn=True)
        except OrchestratorError as exc:
            if self._phase is _Phase.SENT:  # refused before it started (e.g. unknown command)
                self._phase = _Phase.IDLE
                self._emit(TurnFailed(self._id, exc.message))

    def events(self) -> AsyncIterator[AgentEvent]:
        """The session's events until it is closed (one reader; resumable after ``break``)."""
        return self._events

    async def abort(self) -> None:
        """Stop the current turn; a no-op when idle."""
        if not self.busy or not self.server.alive:
            return
        self._aborted = True
        # An abort before opencode reported "busy" still ends with an idle event.
        self._phase = _Phase.RUNNING
        await self.server.request("POST", f"/session/{self._id}/abort")

    async def answer_permission(
        self, request_id: PermissionRequestId, answer: PermissionAnswer
    ) -> None:
        """Answer a permission request of this session (once, always or reject)."""
        await self.server.request(
            "POST", f"/permission/{request_id}/reply", body={"reply": str(answer)}
        )

    async def turn_diff(self) -> TurnDiffPart | None:
        """The files the last turn changed (opencode keeps them on the turn's prompt)."""
        if self._last_prompt is None or not self.server.alive:
            return None  # a stopped opencode is not restarted just to read the changes
        path = f"/session/{self._id}/diff?messageID={quote(self._last_prompt)}"
        diff = turn_diff(self._last_prompt, await self.server.request("GET", path))
        # opencode stores the turn's summary just after it goes idle: a turn that
        # patched files but shows none yet is asked again, briefly.
        for _ in range(DIFF_RETRIES):
            if diff.files or not self._patched:
                break
            await anyio.sleep(DIFF_RETRY_DELAY)
            diff = turn_diff(self._last_prompt, await self.server.request("GET", path))
        return diff

    async def revert(self, agent_message_id: str) -> None:
        """Undo the turn of ``agent_message_id`` and every later one, files included."""
        if self.busy:
            raise InvalidInput("Wait for the current reply to finish before undoing a turn.")
        server = await self._live_server()
        # opencode answers an unknown message with the session unchanged: check first.
        messages = await server.request("GET", f"/session/{self._id}/message")
        if not any((m.get("info") or {}).get("id") == agent_message_id for m in messages or []):
            raise NotFound("The agent does not know that turn.")
        body = {"messageID": agent_message_id}
        await server.request("POST", f"/session/{self._id}/revert", body=body)

    async def unrevert(self) -> None:
        """Redo what the last :meth:`revert` undid, files included."""
        if self.busy:
            raise InvalidInput("Wait for the current reply to finish before redoing a turn.")
        server = await self._live_server()
        await server.request("POST", f"/session/{self._id}/unrevert", body={})

    async def answer_question(self, request_id: QuestionRequestId, answers: Answers | None) -> None:
        """Answer a question of this session with one list of labels per question, or reject it."""
        if answers is None:
            await self.server.request("POST", f"/question/{request_id}/reject")
            return
        body = {"answers": [list(answer) for answer in answers]}
        await self.server.request("POST", f"/question/{request_id}/reply", body=body)

    async def history(self) -> list[AgentMessage]:
        """What opencode has stored for this session, oldest first."""
        server = await self._live_server()
        payload = await server.request("GET", f"/session/{self._id}/message")
        return [_message(item) for item in payload or []]

    async def close(self) -> None:
        """Stop listening; under the per-session policy this stops the process too."""
        if self.closed:
            return
        self.closed = True
        self._events.close()
        await self._runtime._release(self)

    async def _live_server(self) -> OpencodeServer:
        async with self._lock:
            if self.closed:
                raise InvalidInput("This agent session is closed.")
            if not self.server.alive:
                self.server = await self._runtime._reattach(self)
            return self.server

    def handle(self, event: Event) -> None:
        """Translate one opencode event of this session into agent events."""
        kind = event.get("type")
        props: Mapping[str, Any] = event.get("properties") or {}
        if kind == "message.updated":
            info = props.get("info") or {}
            if info.get("role") == "assistant" and isinstance(info.get("id"), str):
                self._replies.add(info["id"])
                self._last_reply = info["id"]
                if isinstance(info.get("parentID"), str):
                    self._last_prompt = info["parentID"]
        elif kind == "message.part.updated":
            self._on_part(props.get("part") or {})
        elif kind == "message.part.delta":
            part_id = props.get("partID")
            kind_of_text = self._text_parts.get(str(part_id))
            if props.get("field") == "text" and kind_of_text is not None:
                self._grow(str(props.get("messageID")), str(part_id), kind_of_text, props["delta"])
        elif kind == "session.status":
            status = props.get("status") or {}
            self._on_status(str(status.get("type")), status.get("message"))
        elif kind == "session.idle":
            self._on_status("idle", None)
        elif kind == "session.error":
            self._on_error(props.get("error"))
        elif kind == "permission.asked":
            self._emit(_permission(self._id, props))
        elif kind == "question.asked":
            self._emit(_question(self._id, props))
        elif kind == "session.updated":
            title = (props.get("info") or {}).get("title")
            if isinstance(title, str) and title != self._title and not DEFAULT_TITLE.match(title):
                self._title = title
                self._emit(TitleChanged(self._id, title))
        elif kind == "todo.updated" and self._last_reply is not None:
            # The list belongs to the session; it is kept as a part of the reply that changed it.
            todos = todo_list(props.get("todos"))
            self._emit(PartUpdated(self._id, self._last_reply, TODO_LIST_PART, todos))

    def _on_part(self, part: Mapping[str, Any]) -> None:
        part_id, message_id = part.get("id"), part.get("messageID")
        if not isinstance(part_id, str) or message_id not in self._replies:
            return  # the user's own prompt, or not a part at all
        kind = part.get("type")
        if kind in ("text", "reasoning"):
            if part.get("synthetic"):
                return
            text_kind = TextKind(kind)
            self._text_parts[part_id] = text_kind
            # A whole text longer than its deltas (e.g. sent without deltas) grows the part.
            self._grow(str(message_id), part_id, text_kind, part.get("text"), whole=True)
            return
        if kind == "patch":
            self._patched = True
        self._emit(PartUpdated(self._id, str(message_id), part_id, part_body(part)))

    def _grow(
        self, message_id: str, part_id: str, kind: TextKind, text: object, *, whole: bool = False
    ) -> None:
        if not isinstance(text, str):
            return
        length = self._text_length.get(part_id, 0)
        delta = text[length:] if whole else text
        if not delta:
            return
        self._text_length[part_id] = length + len(delta)
        self._emit(TextDelta(self._id, message_id, part_id, delta, length, kind))

    def handle_exit(self) -> None:
        """The server died: a turn in progress can never finish."""
        if self.busy:
            self._phase = _Phase.IDLE
            self._emit(TurnFailed(self._id, DIED_REASON))
        self._status = None

    def _on_status(self, kind: str, message: object) -> None:
        try:
            status = AgentStatus(kind)
        except ValueError:
            return
        if status is AgentStatus.BUSY and self._phase is _Phase.SENT:
            self._phase = _Phase.RUNNING
        if status != self._status or status is AgentStatus.RETRY:
            self._status = status
            text = message if isinstance(message, str) else None
            self._emit(SessionStatusChanged(self._id, status, text))
        # opencode repeats "idle" and may send a late one for the previous turn:
        # only an idle after this turn's "busy" ends it.
        if status is AgentStatus.IDLE and self._phase is _Phase.RUNNING:
            self._phase = _Phase.IDLE
            if self._aborted:
                self._emit(TurnFailed(self._id, ABORTED_REASON, aborted=True))
            elif self._error is not None:
                self._emit(TurnFailed(self._id, self._error))
            else:
                self._emit(TurnFinished(self._id))

    def _on_error(self, error: object) -> None:
        if self._phase is not _Phase.RUNNING or self._error is not None:
            return  # opencode repeats errors after the turn ended
        name, message = _error_parts(error)
        if name == "MessageAbortedError":
            self._aborted = True
        self._error = message or "The agent failed."

    def _emit(self, event: AgentEvent) -> None:
        if not self.closed:
            self._events.put(event)


def _session_of(props: Mapping[str, Any]) -> object:
    """The session an event is about: at its top, or in its part or message info."""
    for inner in (props, props.get("part"), props.get("info")):
        if isinstance(inner, Mapping) and inner.get("sessionID") is not None:
            return inner["sessionID"]
    return None


def _error_parts(error: object) -> tuple[str, str]:
    if not isinstance(error, Mapping):
        return "", ""
    data = error.get("data")
    message = data.get("message") if isinstance(data, Mapping) else None
    first_line = str(message or "").strip().splitlines()
    return str(error.get("name", "")), (first_line[0][:500] if first_line else "")


def _permission(session_id: AgentSessionId, props: Mapping[str, Any]) -> PermissionAsked:
    patterns = tuple(str(p) for p in props.get("patterns") or ())
    metadata = props.get("metadata") or {}
    description = next(
        (str(metadata[key]) for key in ("description", "command", "filepath") if key in metadata),
        " ".join(patterns),
    )
    return PermissionAsked(
        session_id,
        PermissionRequestId(str(props["id"])),
        str(props.get("permission", "")),
        patterns,
        description,
        *_edit_diff(metadata),
    )


def _edit_diff(metadata: Mapping[str, Any]) -> tuple[str, str, int]:
    """The file, bounded unified diff and its full size an ``edit`` request carries."""
    file, diff = metadata.get("filepath"), metadata.get("diff")
    file = file if isinstance(file, str) else ""
    if not isinstance(diff, str) or is_binary_patch(diff):
        return file, "", 0
    return file, clip_utf8(diff, MAX_DIFF_BYTES), len(diff.encode())


def _question(session_id: AgentSessionId, props: Mapping[str, Any]) -> QuestionAsked:
    asked = tuple(
        Question(
            str(q.get("question", "")),
            str(q.get("header", "")),
            tuple(
                QuestionOption(str(o.get("label", "")), str(o.get("description", "")))
                for o in q.get("options") or ()
                if isinstance(o, Mapping)
            ),
            multiple=bool(q.get("multiple", False)),
            custom=q.get("custom") is not False,  # opencode's default: a typed answer is allowed
        )
        for q in props.get("questions") or ()
        if isinstance(q, Mapping)
    )
    return QuestionAsked(session_id, QuestionRequestId(str(props["id"])), asked)


def _message(item: Mapping[str, Any]) -> AgentMessage:
    info = item.get("info") or {}
    parts = item.get("parts") or []
    text = "".join(
        str(p.get("text", "")) for p in parts if p.get("type") == "text" and not p.get("synthetic")
    )
    _, error = _error_parts(info.get("error"))
    role = str(info.get("role", ""))
    completed = role == "user" or "completed" in (info.get("time") or {})
    return AgentMessage(str(info.get("id")), role, text, completed, error or None)


class OpencodeRuntime:
    """Runs ``opencode serve`` processes for a machine's workers under one policy.

    Build it with :func:`open_opencode_runtime`, which owns the task group its
    process watchers run in.
    """

    def __init__(
        self,
        task_group: anyio.abc.TaskGroup,
        *,
        policy: ProcessPolicy = ProcessPolicy.SHARED,
        binary: Path | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self.policy = policy
        self._binary = binary if binary is not None else find_opencode(env)
        # Only what opencode and its tools need: none of the orchestrator's secrets.
        base = child_environment(env)
        for key, value in DEFAULT_FLAGS.items():
            base.setdefault(key, value)
        self._env = base
        self._tg = task_group
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._shared: dict[Path, OpencodeServer] = {}
        self._locks: dict[Path, anyio.Lock] = {}
        self._sessions: dict[AgentSessionId, OpencodeSession] = {}
        self._servers: set[OpencodeServer] = set()
        #: Servers with an open_session in flight, so closing a session does not stop them.
        self._opening: dict[OpencodeServer, int] = {}
        #: Directories whose shared server stays running without sessions (see list_models).
        self._warm: set[Path] = set()
        self._stopped = False

    @property
    def binary(self) -> Path:
        return self._binary

    def server_pids(self) -> list[int]:
        """Process IDs of the running opencode servers (for measurements and tests)."""
        return [s.pid for s in self._servers if s.pid is not None and s.alive]

    async def list_models(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> list[ModelRef]:
        """Every model of every provider opencode has configured for the directory.

        Under the shared policy the server that answers stays warm for the
        worker's sessions (started with ``permission_policy``); under the
        per-session policy a temporary one answers and stops.
        """
        return await self._ask(worker_directory, permission_policy, _models)

    async def list_agents(
        self,
        worker_directory: Path,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> AgentCatalog:
        """opencode's primary agents a user may pick (not hidden) and its slash commands."""
        return await self._ask(worker_directory, permission_policy, _catalog)

    async def open_session(
        self,
        worker_directory: Path,
        agent_session_id: AgentSessionId | None = None,
        *,
        permission_policy: PermissionPolicy = DEFAULT_PERMISSION_POLICY,
    ) -> OpencodeSession:
        """Create an agent session, or continue a stored one (NotFound if opencode lost it)."""
        if self._stopped:
            raise AgentUnavailable("The agent runtime is stopped.")
        directory = _directory(worker_directory)
        server = await self._server_for(directory, worker_config(permission_policy))
        self._opening[server] = self._opening.get(server, 0) + 1
        try:
            if agent_session_id is None:
                info = await server.request("POST", "/session", body={})
                agent_session_id = AgentSessionId(str(info["id"]))
            else:
                await server.request("GET", f"/session/{agent_session_id}")
        except BaseException:
            self._done_opening(server)
            if not self._keeps_running(server):
                with anyio.CancelScope(shield=True):
                    await self._stop_server(server)
            raise
        self._done_opening(server)
        existing = self._sessions.get(agent_session_id)
        if existing is not None and not existing.closed:
            raise InvalidInput("That agent session is already open.")
        session = OpencodeSession(self, server, agent_session_id)
        self._sessions[agent_session_id] = session
        return session

    async def stop(self) -> None:
        """Close every session and stop every opencode process."""
        self._stopped = True
        for session in list(self._sessions.values()):
            session.closed = True
            session._events.close()
        self._sessions.clear()
        async with anyio.create_task_group() as tg:
            for server in list(self._servers):
                tg.start_soon(self._stop_server, server)

    async def _ask(
        self,
        worker_directory: Path,
        permission_policy: PermissionPolicy,
        read: Callable[[OpencodeServer], Awaitable[T]],
    ) -> T:
        """``read`` from the worker's warm server (shared policy) or a temporary one."""
        directory = _directory(worker_directory)
        if self.policy is ProcessPolicy.SHARED:
            if self._stopped:
                raise AgentUnavailable("The agent runtime is stopped.")
            server = await self._server_for(directory, worker_config(permission_policy))
            self._warm.add(directory)
            return await read(server)
        temporary = await self._start_server(directory)
        try:
            return await read(temporary)
        finally:
            await temporary.stop()

    async def _server_for(self, directory: Path, config: str | None) -> OpencodeServer:
        if self.policy is ProcessPolicy.PER_SESSION:
            return await self._start_server(directory, config)
        async with self._locks.setdefault(directory, anyio.Lock()):
            server = self._shared.get(directory)
            if server is not None and server.worker_config != config and not self._in_use(server):
                await self._stop_server(server)  # an idle warm server takes a changed policy
                server = None
            if server is None or not server.alive:
                server = await self._start_server(directory, config)
                self._shared[directory] = server
            return server

    async def _start_server(self, directory: Path, config: str | None = None) -> OpencodeServer:
        if not await anyio.Path(directory).is_dir():
            raise InvalidInput(f"The worker directory {directory} does not exist.")
        server = OpencodeServer(
            self._binary,
            directory,
            self._env,
            worker_config=config,
            on_event=self._on_event,
            on_exit=self._on_exit,
            startup_timeout=self._startup_timeout,
            stop_timeout=self._stop_timeout,
        )
        self._servers.add(server)
        try:
            await self._tg.start(server.run)
        except BaseException:
            self._servers.discard(server)
            raise
        return server

    async def _stop_server(self, server: OpencodeServer) -> None:
        if self._shared.get(server.directory) is server:
            del self._shared[server.directory]
        await server.stop()
        self._servers.discard(server)

    def _keeps_running(self, server: OpencodeServer) -> bool:
        """Whether a server stays up once a session leaves it: in use, or kept warm."""
        if self.policy is ProcessPolicy.PER_SESSION:
            return False
        return self._in_use(server) or (
            server.directory in self._warm and self._shared.get(server.directory) is server
        )

    def _in_use(self, server: OpencodeServer) -> bool:
        if self._opening.get(server):
            return True
        return any(s.server is server and not s.closed for s in self._sessions.values())

    def _done_opening(self, server: OpencodeServer) -> None:
        count = self._opening.pop(server, 0) - 1
        if count > 0:
            self._opening[server] = count

    async def _reattach(self, session: OpencodeSession) -> OpencodeServer:
        """A new server for a session whose server stopped; the session itself is kept."""
        if self._stopped:
            raise AgentUnavailable("The agent runtime is stopped.")
        server = await self._server_for(session.worker_directory, session.server.worker_config)
        await server.request("GET", f"/session/{session.agent_session_id}")
        return server

    async def _release(self, session: OpencodeSession) -> None:
        if self._sessions.get(session.agent_session_id) is session:
            del self._sessions[session.agent_session_id]
        if not self._keeps_running(session.server):
            await self._stop_server(session.server)

    def _on_event(self, server: OpencodeServer, event: Event) -> None:
        props = event.get("properties")
        session_id = _session_of(props) if isinstance(props, Mapping) else None
        session = self._sessions.get(AgentSessionId(str(session_id)))
        if session is not None and session.server is server:
            session.handle(event)

    def _on_exit(self, server: OpencodeServer) -> None:
        self._servers.discard(server)
        if self._shared.get(server.directory) is server:
            del self._shared[server.directory]
        for session in self._sessions.values():
            if session.server is server:
                session.handle_exit()


@asynccontextmanager
async def open_opencode_runtime(
    *,
    policy: ProcessPolicy = ProcessPolicy.SHARED,
    binary: Path | None = None,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 30.0,
    stop_timeout: float = 5.0,
) -> AsyncIterator[OpencodeRuntime]:
    """An opencode runtime whose processes are all stopped and reaped on exit."""
    async with anyio.create_task_group() as tg:
        runtime = OpencodeRuntime(
            tg,
            policy=policy,
            binary=binary,
            env=env,
            startup_timeout=startup_timeout,
            stop_timeout=stop_timeout,
        )
        try:
            yield runtime
        finally:
            with anyio.CancelScope(shield=True):
                await runtime.stop()


#: opencode's agents that act (the default one and the task tool's): an agent's own
#: permission rules win over the top-level ones, so the policy is set on them too.
#: ``plan`` and ``explore`` keep opencode's read-only rules.
ACTING_AGENTS = ("build", "general")


def worker_config(permission_policy: PermissionPolicy) -> str:
    """The opencode configuration a worker's server runs with (``OPENCODE_CONFIG_CONTENT``).

    opencode merges it over the user's global and project configs, taking its
    keys first, so the worker's policy holds without editing any of their files.
    """
    rules = permission_policy.as_dict()
    agents = {name: {"permission": rules} for name in ACTING_AGENTS}
    return json.dumps({"permission": rules, "agent": agents})


def _directory(path: Path) -> Path:
    return Path(path).expanduser().resolve()


async def _models(server: OpencodeServer) -> list[ModelRef]:
    payload = await server.request("GET", "/config/providers")
    models = [
        ModelRef(str(provider["id"]), str(model_id))
        for provider in (payload or {}).get("providers", [])
        for model_id in (provider.get("models") or {})
    ]
    return sorted(models, key=str)


async def _catalog(server: OpencodeServer) -> AgentCatalog:
    agents = await server.request("GET", "/agent")
    commands = await server.request("GET", "/command")
    return AgentCatalog(
        agents=tuple(
            str(a["name"])
            for a in agents or []
            if a.get("mode") != "subagent" and not a.get("hidden")
        ),
        commands=tuple(str(c["name"]) for c in commands or []),
    )

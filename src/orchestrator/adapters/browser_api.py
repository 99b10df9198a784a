"""The browser's API declared once: each route's name, method, path, request and result.

:class:`BrowserApi` lists the routes a script may call with a user API token,
one typed method each, marked with :func:`route`. Arguments named in the path
template fill it; the others travel as the JSON body (an attrs record, such as
``JobDraft``, as its fields). The result is the value under ``result_key`` of
the JSON answer; ``body`` adds fixed fields to every call's body (a dismissal
says ``dismiss: true``). A GET sends its arguments as the query string, a
``True`` as ``1`` and a ``False`` or ``None`` not at all. :data:`BROWSER_ROUTES`
is the table built from it: the Python client's methods are generated from it,
and the server registers each entry's method and path to its handler
(:mod:`orchestrator.entrypoints.web.browser_routes`).
"""

from __future__ import annotations

import inspect
import string
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Final, Protocol, TypeVar, get_type_hints

import attrs

from orchestrator.adapters.machine_api import Argument
from orchestrator.adapters.wire import converter
from orchestrator.domain.chat import ChatMessage, ChatSession, PermissionAnswer, PermissionRequest
from orchestrator.domain.commands import Command, CommandArguments, CommandKind
from orchestrator.domain.ids import (
    ChatSessionId,
    CommandId,
    JobId,
    MachineId,
    PermissionId,
    QuestionId,
    WorkerId,
)
from orchestrator.domain.jobs import Job, JobDraft, JobRun
from orchestrator.domain.model import MachineSummary, Worker
from orchestrator.domain.questions import Answers, QuestionRequest

F = TypeVar("F", bound=Callable[..., object])


@attrs.frozen
class Route:
    """One route of the browser API: how a call becomes an HTTP request and back."""

    name: str
    method: str
    #: The path template, ``{name}`` for each argument it carries.
    path: str
    #: The arguments that travel in the body (or the query string of a GET).
    request: tuple[Argument, ...]
    #: The key of the JSON answer that holds the result.
    result_key: str
    #: The result's type (a domain record, or a list of them).
    result: object
    #: The method's signature without ``self``.
    signature: inspect.Signature
    #: Fields every call's body carries whatever the arguments.
    body: Mapping[str, object] = attrs.field(factory=dict)

    @property
    def path_names(self) -> tuple[str, ...]:
        """The arguments the path template carries, in order."""
        return tuple(name for _, name, _, _ in string.Formatter().parse(self.path) if name)

    def http(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> tuple[str, object]:
        """The path (with any query) and the JSON body of a call with ``args`` and ``kwargs``."""
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        path = self.path.format(**{n: str(bound.arguments[n]) for n in self.path_names})
        body: dict[str, object] = dict(self.body)
        for argument in self.request:
            value = bound.arguments[argument.name]
            if attrs.has(type(value)):
                body.update(converter.unstructure(value))
            else:
                body[argument.name] = converter.unstructure(value)
        if self.method == "GET":
            shown = {k: "1" if v is True else v for k, v in body.items() if v not in (None, False)}
            query = urllib.parse.urlencode(shown)
            return (f"{path}?{query}" if query else path), None
        return path, body


def route(
    method: str, path: str, result_key: str, body: Mapping[str, object] | None = None
) -> Callable[[F], F]:
    """Mark a :class:`BrowserApi` method as the route ``method path`` answering ``result_key``."""

    def mark(function: F) -> F:
        function.__dict__["browser_route"] = (method, path, result_key, dict(body or {}))
        return function

    return mark


class BrowserApi(Protocol):
    """What a user's script may do, one method per route of the browser API."""

    @route("GET", "/api/machines", "machines")
    async def list_machines(self) -> list[MachineSummary]:
        """Your machines, oldest first, each with its workers counted by status."""
        ...

    @route("GET", "/api/machines/{machine_id}/workers", "workers")
    async def list_workers(self, machine_id: MachineId | str) -> list[Worker]:
        """The workers of one of your machines."""
        ...

    @route("POST", "/api/workers/{worker_id}/sessions", "session")
    async def start_session(self, worker_id: WorkerId | str, model: str) -> ChatSession:
        """A new chat session with the worker, answered by ``model`` (one of ``Worker.models``)."""
        ...

    @route("POST", "/api/sessions/{session_id}/messages", "message")
    async def send_message(self, session_id: ChatSessionId | str, content: str) -> ChatMessage:
        """Send a message to the session's worker; its reply streams on the session."""
        ...

    @route("GET", "/api/sessions/{session_id}/permissions", "permissions")
    async def list_permissions(
        self, session_id: ChatSessionId | str, *, all: bool = False
    ) -> list[PermissionRequest]:
        """The session's permission requests waiting for an answer (``all``: answered too)."""
        ...

    @route("POST", "/api/permissions/{permission_id}/answer", "permission")
    async def answer_permission(
        self, permission_id: PermissionId | str, answer: PermissionAnswer
    ) -> PermissionRequest:
        """Allow once, always, or reject what the agent asked to do."""
        ...

    @route("GET", "/api/sessions/{session_id}/questions", "questions")
    async def list_questions(
        self, session_id: ChatSessionId | str, *, all: bool = False
    ) -> list[QuestionRequest]:
        """The session's questions waiting for an answer, oldest first (``all``: answered too)."""
        ...

    @route("POST", "/api/questions/{question_id}/answer", "question")
    async def answer_question(
        self, question_id: QuestionId | str, answers: Answers
    ) -> QuestionRequest:
        """Answer the agent's question: one list of chosen or typed answers per question asked."""
        ...

    @route("POST", "/api/questions/{question_id}/answer", "question", {"dismiss": True})
    async def dismiss_question(self, question_id: QuestionId | str) -> QuestionRequest:
        """Answer the agent's question with no answers; the agent goes on without them."""
        ...

    @route("POST", "/api/machines/{machine_id}/commands", "command")
    async def create_command(
        self, machine_id: MachineId | str, kind: CommandKind, arguments: CommandArguments
    ) -> Command:
        """Queue a directory command on your machine; it runs when the machine is online."""
        ...

    @route("GET", "/api/machines/{machine_id}/commands", "commands")
    async def list_commands(self, machine_id: MachineId | str) -> list[Command]:
        """The machine's latest commands, newest first."""
        ...

    @route("GET", "/api/commands/{command_id}", "command")
    async def get_command(self, command_id: CommandId | str) -> Command:
        """One command as it is now: its status, progress and result."""
        ...

    @route("GET", "/api/jobs", "jobs")
    async def list_jobs(self) -> list[Job]:
        """Your scheduled jobs, oldest first."""
        ...

    @route("POST", "/api/jobs", "job")
    async def create_job(self, draft: JobDraft) -> Job:
        """Schedule a prompt to a worker on a cron schedule."""
        ...

    @route("GET", "/api/jobs/{job_id}", "job")
    async def get_job(self, job_id: JobId | str) -> Job:
        """One of your jobs, with its next run time."""
        ...

    @route("POST", "/api/jobs/{job_id}/run", "run")
    async def run_job_now(self, job_id: JobId | str) -> JobRun:
        """Run the job at once; its schedule stays as it is."""
        ...

    @route("GET", "/api/jobs/{job_id}/runs", "runs")
    async def list_job_runs(self, job_id: JobId | str) -> list[JobRun]:
        """The job's runs, newest first, each with its reply's status."""
        ...


def _route(name: str, function: Callable[..., object]) -> Route:
    method, path, result_key, body = function.__dict__["browser_route"]
    hints = get_type_hints(function)
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())[1:]  # without self
    found = Route(name, method, path, (), result_key, hints["return"], signature, body)
    in_path = set(found.path_names)
    request = tuple(
        Argument(p.name, hints[p.name], p.default, p.kind is inspect.Parameter.KEYWORD_ONLY)
        for p in parameters
        if p.name not in in_path
    )
    return attrs.evolve(found, request=request, signature=signature.replace(parameters=parameters))


#: Every route of the browser API a script may call, by method name, in declaration order.
BROWSER_ROUTES: Final[dict[str, Route]] = {
    name: _route(name, function)
    for name, function in vars(BrowserApi).items()
    if inspect.isfunction(function) and "browser_route" in function.__dict__
}

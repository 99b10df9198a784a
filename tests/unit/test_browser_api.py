"""The browser API declared once: the server serves every route, the client calls each one."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest
from aiohttp import web

import orchestrator
from orchestrator import CommandArguments, CommandKind, JobDraft, PermissionAnswer
from orchestrator.adapters.browser_api import BROWSER_ROUTES, BrowserApi
from orchestrator.adapters.remote.user_client import _Route
from orchestrator.domain.chat import ChatSession
from orchestrator.domain.commands import CommandStatus
from orchestrator.domain.questions import Question, QuestionOption
from orchestrator.domain.replies import PermissionAsk, QuestionAsk
from orchestrator.entrypoints.web import browser_routes, jobs_api
from orchestrator.entrypoints.web.browser_routes import HANDLERS
from tests.unit.test_web_support import MODEL, Chat

pytestmark = pytest.mark.anyio

APP_OPTIONS: dict[str, Any] = {"keepalive": 0.05}


async def _client(chat: Chat, username: str = "alice") -> orchestrator.Client:
    found = await chat.web.backend.find_user(username)
    user = found[0] if found else await chat.web.create_user(username)
    _, secret = await chat.web.backend.create_api_token(user.user_id, "tests")
    return orchestrator.Client(str(chat.web.server.make_url("/")), secret)


async def _asked_colour(chat: Chat) -> ChatSession:
    """A session whose claimed reply waits on one question: red or blue."""
    session, reply = await chat.claimed("Pick a colour")
    options = (QuestionOption("red"), QuestionOption("blue"))
    await chat.web.backend.record_question(
        chat.token,
        reply.message_id,
        QuestionAsk("que_1", [Question("Which colour?", "Colour", options)]),
    )
    return session


def _served(app: web.Application) -> dict[tuple[str, str], list[object]]:
    served: dict[tuple[str, str], list[object]] = {}
    for resource in app.router.resources():
        for found in resource:
            served.setdefault((found.method, resource.canonical), []).append(found.handler)
    return served


async def test_the_server_serves_every_declared_route_with_its_handler(chat: Chat) -> None:
    """Each table entry is one route of the app's router, its method and path, its handler."""
    served = _served(chat.web.app)
    routed = {name: served.get((r.method, r.path)) for name, r in BROWSER_ROUTES.items()}
    assert routed == {name: [HANDLERS[name]] for name in BROWSER_ROUTES}


@pytest.mark.parametrize(
    ("handlers", "sentence"),
    [
        ({n: h for n, h in HANDLERS.items() if n != "get_job"}, "none for ['get_job']"),
        ({**HANDLERS, "get_jobs": jobs_api.get_job}, "no route for ['get_jobs']"),
        (
            {**HANDLERS, "dismiss_question": jobs_api.get_job},
            "POST /api/questions/{question_id}/answer is declared with two handlers.",
        ),
    ],
)
def test_a_declared_route_without_its_one_handler_is_refused(
    handlers: dict[str, Any], sentence: str
) -> None:
    """A route with no handler, a handler with no route, or one path with two: no app."""
    router = web.UrlDispatcher()
    with pytest.raises(ValueError, match=re.escape(sentence)):
        browser_routes.add_routes(router, handlers)


def test_the_client_offers_exactly_the_declared_routes() -> None:
    """The client's generated methods are the table's, no more and no fewer."""
    generated = {n for n, v in vars(orchestrator.Client).items() if isinstance(v, _Route)}
    assert generated == set(BROWSER_ROUTES)
    assert {"send", "follow"} <= set(dir(orchestrator.Client))


def test_a_method_missing_from_the_table_fails_when_the_client_is_made() -> None:
    """Generating a client method the table does not declare is refused at once."""

    async def not_a_route(api: BrowserApi) -> int:
        return 0

    with pytest.raises(ValueError, match="not_a_route is not in its API's table"):
        _Route(not_a_route)


def test_a_call_becomes_the_declared_path_and_body() -> None:
    """Path arguments fill the template; a record travels as its fields; a GET has no body."""
    create = BROWSER_ROUTES["create_command"]
    path, body = create.http(("mch_1", CommandKind.MKDIR, CommandArguments(path="a/b")), {})
    assert path == "/api/machines/mch_1/commands"
    assert body == {"kind": "mkdir", "path": "a/b", "parents": False, "url": None, "cursor": None}
    assert BROWSER_ROUTES["get_job"].http(("job_7",), {}) == ("/api/jobs/job_7", None)


def test_a_flag_is_a_query_of_1_and_a_dismissal_a_fixed_body() -> None:
    """``all=True`` asks ``?all=1``, ``all=False`` nothing; a dismissal posts ``dismiss: true``."""
    questions = BROWSER_ROUTES["list_questions"]
    assert questions.http(("ses_1",), {"all": True}) == (
        "/api/sessions/ses_1/questions?all=1",
        None,
    )
    assert questions.http(("ses_1",), {}) == ("/api/sessions/ses_1/questions", None)
    dismiss = BROWSER_ROUTES["dismiss_question"]
    assert dismiss.http(("que_1",), {}) == ("/api/questions/que_1/answer", {"dismiss": True})


async def test_permissions_are_listed_and_answered(chat: Chat) -> None:
    """A waiting permission request is listed, answered once, and then no longer waits."""
    session, reply = await chat.claimed("Delete the logs")
    asked = await chat.web.backend.record_permission(
        chat.token, reply.message_id, PermissionAsk("per_1", "bash", "rm -rf logs")
    )
    async with await _client(chat) as client:
        [waiting] = await client.list_permissions(session.chat_session_id)
        assert waiting.permission_id == asked.permission_id
        answered = await client.answer_permission(waiting.permission_id, PermissionAnswer.REJECT)
        assert answered.answer is PermissionAnswer.REJECT
        assert await client.list_permissions(session.chat_session_id) == []
        assert await client.list_permissions(session.chat_session_id, all=True) == [answered]
        with pytest.raises(orchestrator.Conflict):
            await client.answer_permission(waiting.permission_id, PermissionAnswer.ONCE)


async def test_questions_are_listed_and_answered(chat: Chat) -> None:
    """A waiting question is listed and answered with the chosen label."""
    session = await _asked_colour(chat)
    async with await _client(chat) as client:
        [waiting] = await client.list_questions(session.chat_session_id)
        answered = await client.answer_question(waiting.question_id, (("blue",),))
        assert answered.answers == (("blue",),)
        assert await client.list_questions(session.chat_session_id) == []
        assert await client.list_questions(session.chat_session_id, all=True) == [answered]


async def test_a_question_is_dismissed(chat: Chat) -> None:
    """A dismissed question has no answers, waits no more, and cannot be answered after."""
    session = await _asked_colour(chat)
    async with await _client(chat) as client:
        [waiting] = await client.list_questions(session.chat_session_id)
        dismissed = await client.dismiss_question(waiting.question_id)
        assert (dismissed.dismissed, dismissed.answers) == (True, None)
        assert await client.list_questions(session.chat_session_id) == []
        with pytest.raises(orchestrator.Conflict):
            await client.answer_question(waiting.question_id, (("blue",),))


async def test_commands_are_queued_listed_and_read(chat: Chat) -> None:
    """A command queued through the client is pending on its machine and reads back the same."""
    async with await _client(chat) as client:
        machine_id = chat.worker.machine_id
        made = await client.create_command(
            machine_id, CommandKind.MKDIR, CommandArguments(path="new", parents=True)
        )
        assert made.status is CommandStatus.PENDING
        assert made.arguments == CommandArguments(path="new", parents=True)
        assert [c.command_id for c in await client.list_commands(machine_id)] == [made.command_id]
        assert await client.get_command(made.command_id) == made


async def test_jobs_are_created_run_now_and_their_runs_listed(chat: Chat) -> None:
    """A job made through the client is listed, runs at once on request, and shows that run."""
    draft = JobDraft(chat.worker.worker_id, "nightly", MODEL, "Summarise the day", "0 3 * * *")
    async with await _client(chat) as client:
        job = await client.create_job(draft)
        assert (job.name, job.cron, job.enabled) == ("nightly", "0 3 * * *", True)
        assert await client.list_jobs() == [job]
        assert await client.get_job(job.job_id) == job
        run = await client.run_job_now(job.job_id)
        assert [r.run_id for r in await client.list_job_runs(job.job_id)] == [run.run_id]


async def test_bad_input_and_others_records_get_one_sentence(chat: Chat) -> None:
    """A bad cron is InvalidInput; another user's job, machine, session and worker: NotFound."""
    draft = JobDraft(chat.worker.worker_id, "bad", MODEL, "p", "not a cron")
    async with await _client(chat) as client:
        with pytest.raises(orchestrator.InvalidInput) as bad:
            await client.create_job(draft)
        assert bad.value.message.endswith(".")
        good = attrs.evolve(draft, cron="0 3 * * *")
        job = await client.create_job(good)
        session = await client.start_session(chat.worker.worker_id, MODEL)
    async with await _client(chat, "bob") as bob:
        with pytest.raises(orchestrator.NotFound) as job_missing:
            await bob.run_job_now(job.job_id)
        assert job_missing.value.message == "No such job."
        with pytest.raises(orchestrator.NotFound):
            await bob.list_commands(chat.worker.machine_id)
        with pytest.raises(orchestrator.NotFound):
            await bob.list_permissions(session.chat_session_id)
        with pytest.raises(orchestrator.NotFound):
            await bob.create_job(good)

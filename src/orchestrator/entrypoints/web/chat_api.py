"""The browser's chat API: sessions of a worker, their messages and permission requests.

Same conventions as :mod:`.user_api`: a session cookie on every call, the CSRF
token on every state change, someone else's IDs are 404, records as in
:mod:`orchestrator.adapters.wire`. The live side is :mod:`.chat_stream`.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from orchestrator.application.usage import worker_usage
from orchestrator.domain.chat import (
    MAX_MESSAGE_LENGTH,
    PermissionAnswer,
    check_runnable,
    validate_message,
)
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.ids import MessageId, UserId, WorkerId
from orchestrator.domain.model import MachineStatus, Worker, WorkerStatus
from orchestrator.domain.ports import ServerBackend
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.owned import owned, owned_with
from orchestrator.entrypoints.web.payload import (
    MESSAGE,
    PERMISSION,
    SESSION,
    WORKER,
    list_response,
    page_json,
    page_query,
    parse_id,
    queued_response,
    read_body,
    record_response,
)
from orchestrator.entrypoints.web.state import BACKEND

#: Route name of ``POST /api/sessions/{id}/messages``, which accepts bodies above the default.
SEND_MESSAGE_ROUTE: Final = "chat.send_message"
#: Route name of ``POST /api/messages/{id}/edit``, which takes a whole message too.
EDIT_MESSAGE_ROUTE: Final = "chat.edit_message"
#: Worst case of JSON for one character: an astral one escaped as two ``\\uXXXX``.
JSON_BYTES_PER_CHAR: Final = 12
MAX_MODEL_LENGTH: Final = 200
QUEUED_NOTICE: Final = "The worker is offline; the message will be processed when it comes back."

_ANSWERS: Final = ", ".join(answer.value for answer in PermissionAnswer)


def message_body_bytes(max_body_bytes: int) -> int:
    """The body limit of the send-message route: any valid message fits, however encoded."""
    return max(max_body_bytes, MAX_MESSAGE_LENGTH * JSON_BYTES_PER_CHAR + 4096)


async def worker_state(
    backend: ServerBackend, user: UserId, worker_id: WorkerId
) -> tuple[Worker | None, bool]:
    """The user's worker and whether it is online (a worker of an offline machine is not)."""
    try:
        worker = await backend.get_worker(user, worker_id)
        machine = await backend.get_machine(user, worker.machine_id)
    except NotFound:
        return None, False  # removed meanwhile
    online = machine.status is MachineStatus.ONLINE
    return worker, online and worker.status is WorkerStatus.ONLINE


async def list_sessions(request: web.Request) -> web.Response:
    """``GET /api/workers/{worker_id}/sessions[?cursor=…][&limit=N]``: open first, then ended.

    Every session, or with ``cursor`` or ``limit`` one page (``cursor``, ``has_more``).
    """
    user, worker_id, backend = require_user(request), WORKER.of(request), request.app[BACKEND]
    return await list_response(
        request,
        "sessions",
        lambda: backend.list_sessions(user, worker_id),
        lambda cursor, limit: backend.list_sessions_page(user, worker_id, cursor, limit),
    )


async def start_session(request: web.Request) -> web.Response:
    """``POST /api/workers/{worker_id}/sessions {model, agent?}``: a new active session."""
    user = require_user(request)
    worker_id = WORKER.of(request)
    body = await read_body(request)
    model = body.string("model").strip()
    if not model or len(model) > MAX_MODEL_LENGTH:
        raise InvalidInput(f"Choose a model (at most {MAX_MODEL_LENGTH} characters).")
    agent = body.optional_string("agent")
    session = await request.app[BACKEND].start_session(user, worker_id, model, agent)
    return record_response("session", session, status=201)


#: ``GET /api/sessions/{session_id}``.
get_session = owned("session", SESSION, lambda backend: backend.get_session)

#: ``POST /api/sessions/{session_id}/end``: terminate it; a streaming reply is stopped.
end_session = owned("session", SESSION, lambda backend: backend.end_session)


async def get_worker_usage(request: web.Request) -> web.Response:
    """``GET /api/workers/{worker_id}/usage``: tokens and cost over the worker's sessions."""
    found = await worker_usage(request.app[BACKEND], require_user(request), WORKER.of(request))
    return record_response("usage", found)


#: ``POST /api/sessions/{session_id}/title {title}``: the user's own title for the session.
rename_session = owned_with(
    "session", SESSION, lambda body: body.string("title"), lambda backend: backend.rename_session
)

#: ``POST /api/sessions/{session_id}/undo {message_id}``: undo a reply's turn and later ones.
undo_turn = owned_with(
    "session",
    SESSION,
    lambda body: MessageId(parse_id(body.string("message_id"), "message")),
    lambda backend: backend.undo_turn,
)


#: ``POST /api/sessions/{session_id}/redo``: redo what is undone in the session.
redo_turns = owned("session", SESSION, lambda backend: backend.redo_turns)

#: ``POST /api/sessions/{session_id}/restore``: reopen a terminated session as idle.
restore_session = owned("session", SESSION, lambda backend: backend.restore_session)


async def list_messages(request: web.Request) -> web.Response:
    """``GET /api/sessions/{session_id}/messages[?cursor=…][&limit=N]``: one page, newest first.

    Answers ``{"messages", "cursor", "has_more"}``: the newest page (or the one
    ``cursor`` names) with its messages in reading order, oldest first, and the
    cursor of the page of earlier messages (null at the start of the session).
    """
    page = await request.app[BACKEND].list_messages_page(
        require_user(request), SESSION.of(request), *page_query(request)
    )
    return web.json_response(page_json("messages", page.items[::-1], page.cursor))


async def send_message(request: web.Request) -> web.Response:
    """``POST /api/sessions/{session_id}/messages {content, agent?}``: queue a message.

    Answers the pending message and ``queued``: true (with a ``notice``) when
    the worker is offline and will process it once it is back.
    """
    user = require_user(request)
    session_id = SESSION.of(request)
    fields = await read_body(request)
    content = validate_message(fields.string("content"))
    backend = request.app[BACKEND]
    session = await backend.get_session(user, session_id)
    worker, online = await worker_state(backend, user, session.worker_id)
    if worker is not None:
        check_runnable(worker)  # else the message would wait forever
    message = await backend.send_message(user, session_id, content, fields.optional_string("agent"))
    return queued_response("message", message, waits=not online, notice=QUEUED_NOTICE, status=201)


#: ``POST /api/messages/{message_id}/edit {content}``: change a message still queued.
edit_message = owned_with(
    "message", MESSAGE, lambda body: body.string("content"), lambda backend: backend.edit_message
)


async def cancel_message(request: web.Request) -> web.Response:
    """``POST /api/messages/{message_id}/cancel``: drop a message still queued."""
    await request.app[BACKEND].cancel_message(require_user(request), MESSAGE.of(request))
    return web.json_response({"cancelled": True})


#: ``POST /api/sessions/{session_id}/abort``: stop the reply; ``message`` is null if none.
abort = owned("message", SESSION, lambda backend: backend.request_abort)


async def list_permissions(request: web.Request) -> web.Response:
    """``GET /api/sessions/{session_id}/permissions[?all=1]``: requests waiting (or all)."""
    backend = request.app[BACKEND]
    every = request.query.get("all") == "1"
    found = await backend.list_permissions(require_user(request), SESSION.of(request), every)
    return record_response("permissions", found)


async def answer_permission(request: web.Request) -> web.Response:
    """``POST /api/permissions/{permission_id}/answer {answer: once|always|reject}``."""
    user = require_user(request)
    permission_id = PERMISSION.of(request)
    raw = (await read_body(request)).string("answer")
    try:
        answer = PermissionAnswer(raw)
    except ValueError as exc:
        raise InvalidInput(f"The field 'answer' must be one of: {_ANSWERS}.") from exc
    permission = await request.app[BACKEND].answer_permission(user, permission_id, answer)
    return record_response("permission", permission)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the chat API."""
    router.add_get("/api/workers/{worker_id}/sessions", list_sessions)
    router.add_get("/api/workers/{worker_id}/usage", get_worker_usage)
    router.add_get("/api/sessions/{session_id}", get_session)
    router.add_post("/api/sessions/{session_id}/end", end_session)
    router.add_post("/api/sessions/{session_id}/restore", restore_session)
    router.add_post("/api/sessions/{session_id}/title", rename_session)
    router.add_post("/api/sessions/{session_id}/undo", undo_turn)
    router.add_post("/api/sessions/{session_id}/redo", redo_turns)
    router.add_get("/api/sessions/{session_id}/messages", list_messages)
    router.add_post("/api/messages/{message_id}/edit", edit_message, name=EDIT_MESSAGE_ROUTE)
    router.add_post("/api/messages/{message_id}/cancel", cancel_message)
    router.add_post("/api/sessions/{session_id}/abort", abort)

"""The JSON API the browser uses, under ``/api/``; every call is scoped to the signed-in user.

Bodies are JSON objects; answers are JSON objects (records as in
:mod:`orchestrator.adapters.wire`) or ``204 No Content``.
"""

from __future__ import annotations

import logging
import shlex

from aiohttp import web

from orchestrator.adapters.wire import converter
from orchestrator.application import accounts, machines
from orchestrator.domain.errors import AuthenticationFailed, NotFound
from orchestrator.domain.model import User
from orchestrator.domain.paging import MACHINE_PAGE
from orchestrator.domain.permissions import (
    DEFAULT_PERMISSION_POLICY,
    PermissionPolicy,
    parse_permission_policy,
)
from orchestrator.entrypoints.web.auth import (
    SIGN_IN_FIRST,
    Session,
    current_session,
    require_user,
)
from orchestrator.entrypoints.web.limits import account_target, device_proof, trust_device
from orchestrator.entrypoints.web.owned import owned
from orchestrator.entrypoints.web.payload import (
    MACHINE,
    WORKER,
    list_response,
    read_body,
    record_response,
)
from orchestrator.entrypoints.web.proxy import client_address
from orchestrator.entrypoints.web.state import (
    BACKEND,
    HASHER,
    HASHING,
    LOGIN_LIMITER,
    SESSIONS,
    SETTINGS,
    SIGN_INS,
)

log = logging.getLogger(__name__)


def worker_start_command(public_url: str) -> str:
    """The shell command that starts a machine process; it asks for the token (never an arg)."""
    return f"orchestrator worker start --server {shlex.quote(public_url)}"


async def checked_sign_in(request: web.Request, username: str, password: str) -> User:
    """The account if the password is right, under the per-account and total limits."""
    accounts.check_password_length(password)
    try:
        return await request.app[LOGIN_LIMITER].attempt(
            account_target(username),
            device_proof(request),
            lambda: accounts.verify_password(
                request.app[BACKEND],
                request.app[HASHER],
                username,
                password,
                limiter=request.app[HASHING],
            ),
        )
    except AuthenticationFailed as exc:
        # One line per failure with the real client (behind a trusted proxy: the forwarded
        # one), so an operator or fail2ban can act on the address.
        log.warning("Failed sign-in for %r from %s: %s", username, client_address(request), exc)
        raise


async def new_sign_in(request: web.Request, user: User) -> Session:
    """A session for ``user`` with a sign-in recorded on the server."""
    return Session.fresh(user.user_id, await request.app[SIGN_INS].start(user.user_id))


def signed_in_response(
    request: web.Request, response: web.StreamResponse, user: User, session: Session
) -> None:
    """Give ``response`` the new session cookie and trust this browser for ``user``."""
    codec = request.app[SESSIONS]
    codec.save(response, session)
    trust_device(request.app[LOGIN_LIMITER], request, response, user.username, secure=codec.secure)


async def sign_out(request: web.Request, response: web.StreamResponse, everywhere: bool) -> None:
    """End this browser's sign-in (or every sign-in of its user) and clear its cookie."""
    session = current_session(request)
    if session and session.user_id and session.sign_in_id:
        sign_ins = request.app[SIGN_INS]
        if everywhere:
            await sign_ins.end_others(session.user_id, keep=None)
        else:
            await sign_ins.end(session.user_id, session.sign_in_id)
    request.app[SESSIONS].clear(response)


async def login(request: web.Request) -> web.Response:
    """``POST /api/login {username, password}``: sign in and get a CSRF token."""
    body = await read_body(request)
    user = await checked_sign_in(request, body.string("username"), body.string("password"))
    session = await new_sign_in(request, user)
    response = web.json_response(
        {"user": converter.unstructure(user), "csrf_token": session.csrf_token}
    )
    signed_in_response(request, response, user, session)
    return response


async def logout(request: web.Request) -> web.Response:
    """``POST /api/logout {everywhere?}``: end this sign-in, or with everywhere every one."""
    require_user(request)
    body = await read_body(request, allow_empty=True)
    everywhere = body.data.get("everywhere") is True
    response = web.Response(status=204)
    await sign_out(request, response, everywhere)
    return response


async def change_password(request: web.Request) -> web.Response:
    """``POST /api/password {current_password, new_password}``: other sign-ins end."""
    user_id = require_user(request)
    body = await read_body(request)
    user = await request.app[BACKEND].get_user(user_id)
    await checked_sign_in(request, user.username, body.string("current_password"))
    await accounts.change_password(
        request.app[BACKEND],
        request.app[HASHER],
        user_id,
        body.string("new_password"),
        limiter=request.app[HASHING],
    )
    session = current_session(request)
    keep = session.sign_in_id if session else None
    ended = await request.app[SIGN_INS].end_others(user_id, keep=keep)
    return web.json_response({"signed_out": ended})


async def session(request: web.Request) -> web.Response:
    """``GET /api/session``: the signed-in user and the CSRF token to send back."""
    user_id = require_user(request)
    try:
        user = await request.app[BACKEND].get_user(user_id)
    except NotFound as exc:
        raise AuthenticationFailed(SIGN_IN_FIRST) from exc
    current = current_session(request)
    csrf_token = current.csrf_token if current else ""
    return web.json_response({"user": converter.unstructure(user), "csrf_token": csrf_token})


async def list_machines(request: web.Request) -> web.Response:
    """``GET /api/machines[?cursor=…][&limit=N]``: the user's machines with worker counts.

    Oldest first: all of them, or with ``cursor`` or ``limit`` one page
    (``{"machines", "cursor", "has_more"}``, at most ``MACHINE_PAGE``).
    """
    user, backend = require_user(request), request.app[BACKEND]
    return await list_response(
        request,
        "machines",
        lambda: machines.list_machines(backend, user),
        lambda cursor, limit: backend.list_machines_page(user, cursor, limit),
        MACHINE_PAGE,
    )


async def create_machine(request: web.Request) -> web.Response:
    """``POST /api/machines {name}``: the new machine, its token (shown once) and the command."""
    user = require_user(request)
    body = await read_body(request)
    machine, token = await machines.create_machine(request.app[BACKEND], user, body.string("name"))
    command = worker_start_command(request.app[SETTINGS].public_url)
    return web.json_response(
        {"machine": converter.unstructure(machine), "token": str(token), "command": command},
        status=201,
    )


#: ``GET /api/machines/{machine_id}``.
get_machine = owned("machine", MACHINE, lambda backend: backend.get_machine)


async def delete_machine(request: web.Request) -> web.Response:
    """``DELETE /api/machines/{machine_id}``: the machine, its workers and its token go."""
    await machines.delete_machine(request.app[BACKEND], require_user(request), MACHINE.of(request))
    return web.Response(status=204)


async def list_workers(request: web.Request) -> web.Response:
    """``GET /api/machines/{machine_id}/workers``."""
    found = await machines.list_workers(
        request.app[BACKEND], require_user(request), MACHINE.of(request)
    )
    return record_response("workers", found)


def _policy(raw: object) -> PermissionPolicy:
    return DEFAULT_PERMISSION_POLICY if raw is None else parse_permission_policy(raw)


async def add_worker(request: web.Request) -> web.Response:
    """``POST /api/machines/{machine_id}/workers {directory, name?, permission_policy?}``.

    A ready worker; without a ``permission_policy`` it gets the safe defaults.
    """
    user = require_user(request)
    machine_id = MACHINE.of(request)
    body = await read_body(request)
    worker = await machines.add_worker(
        request.app[BACKEND],
        user,
        machine_id,
        body.string("directory"),
        body.optional_string("name"),
        _policy(body.data.get("permission_policy")),
    )
    return record_response("worker", worker, status=201)


async def set_permission_policy(request: web.Request) -> web.Response:
    """``PUT /api/workers/{worker_id}/permission-policy {bash?, edit?, webfetch?, …}``."""
    user = require_user(request)
    body = await read_body(request)
    worker = await machines.set_worker_permission_policy(
        request.app[BACKEND], user, WORKER.of(request), parse_permission_policy(body.data)
    )
    return record_response("worker", worker)


async def issue_worker_token(request: web.Request) -> web.Response:
    """``POST /api/machines/{machine_id}/worker-tokens``: a single-use worker token."""
    token = await machines.issue_worker_token(
        request.app[BACKEND], require_user(request), MACHINE.of(request)
    )
    return web.json_response({"worker_token": str(token)}, status=201)


async def list_pending_workers(request: web.Request) -> web.Response:
    """``GET /api/workers/pending``: workers waiting for approval."""
    found = await machines.list_pending_workers(request.app[BACKEND], require_user(request))
    return record_response("workers", found)


async def approve_worker(request: web.Request) -> web.Response:
    """``POST /api/workers/{worker_id}/approve``."""
    worker = await machines.approve_worker(
        request.app[BACKEND], require_user(request), WORKER.of(request)
    )
    return record_response("worker", worker)


async def reject_worker(request: web.Request) -> web.Response:
    """``POST /api/workers/{worker_id}/reject``."""
    await machines.reject_worker(request.app[BACKEND], require_user(request), WORKER.of(request))
    return web.Response(status=204)


async def remove_worker(request: web.Request) -> web.Response:
    """``DELETE /api/workers/{worker_id}``."""
    await machines.remove_worker(request.app[BACKEND], require_user(request), WORKER.of(request))
    return web.Response(status=204)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the user API."""
    router.add_post("/api/login", login)
    router.add_post("/api/logout", logout)
    router.add_post("/api/password", change_password)
    router.add_get("/api/session", session)
    router.add_post("/api/machines", create_machine)
    router.add_get("/api/machines/{machine_id}", get_machine)
    router.add_delete("/api/machines/{machine_id}", delete_machine)
    router.add_post("/api/machines/{machine_id}/workers", add_worker)
    router.add_post("/api/machines/{machine_id}/worker-tokens", issue_worker_token)
    router.add_get("/api/workers/pending", list_pending_workers)
    router.add_post("/api/workers/{worker_id}/approve", approve_worker)
    router.add_post("/api/workers/{worker_id}/reject", reject_worker)
    router.add_delete("/api/workers/{worker_id}", remove_worker)
    router.add_put("/api/workers/{worker_id}/permission-policy", set_permission_policy)

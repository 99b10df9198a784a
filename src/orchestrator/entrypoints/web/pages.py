"""HTML pages: first-run setup, sign-in, machines, a machine's workers, the chat and jobs.

Pages are shells: the scripts under ``webui/static/js/`` fill them from the
JSON API and keep them live over ``/api/events``. Forms carry the session's
CSRF token in a hidden ``csrf_token`` field; a visitor gets an anonymous
session (CSRF token only) when a form is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from orchestrator.adapters.wire import converter, status_for
from orchestrator.application import accounts, machines
from orchestrator.domain.errors import (
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    OrchestratorError,
    PermissionDenied,
)
from orchestrator.domain.ids import UserId
from orchestrator.domain.model import User
from orchestrator.entrypoints.web.auth import (
    Session,
    current_session,
)
from orchestrator.entrypoints.web.errors import error_response
from orchestrator.entrypoints.web.parsing import read_form
from orchestrator.entrypoints.web.payload import MACHINE
from orchestrator.entrypoints.web.state import (
    BACKEND,
    HASHER,
    HASHING,
    SESSIONS,
    SETUP,
)
from orchestrator.entrypoints.web.user_api import (
    checked_sign_in,
    new_sign_in,
    sign_out,
    signed_in_response,
)

BAD_SETUP_LINK = "This setup link is not valid (any more). Sign in, or restart the server."


def _signed_in(request: web.Request) -> UserId | None:
    session = current_session(request)
    return session.user_id if session else None


def _render(
    request: web.Request,
    template: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    session: Session | None = None,
) -> web.Response:
    """Render ``template`` with a CSRF token, starting an anonymous session if needed."""
    current = session or current_session(request) or Session.fresh()
    response = aiohttp_jinja2.render_template(
        template, request, {**context, "csrf_token": current.csrf_token}, status=status
    )
    if current is not current_session(request):
        request.app[SESSIONS].save(response, current)
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def _sign_in(request: web.Request, user: User) -> web.Response:
    response = _see_other("/")
    signed_in_response(request, response, user, await new_sign_in(request, user))
    return response


async def _signed_in_user(request: web.Request) -> User | None:
    """The signed-in user, or None (also when the account is gone)."""
    user_id = _signed_in(request)
    if user_id is None:
        return None
    try:
        return await request.app[BACKEND].get_user(user_id)
    except NotFound:
        return None


async def index(request: web.Request) -> web.StreamResponse:
    """``GET /``: the user's machines; visitors go to the sign-in page."""
    user = await _signed_in_user(request)
    if user is None:
        return await logout(request)
    found = await machines.list_machines(request.app[BACKEND], user.user_id)
    context = {"user": user, "nav": "machines", "machines_json": converter.unstructure(found)}
    return _render(request, "index.html", context)


async def machine_page(request: web.Request) -> web.StreamResponse:
    """``GET /machines/{machine_id}``: one machine's workers (someone else's machine is 404)."""
    user = await _signed_in_user(request)
    if user is None:
        return await logout(request)
    machine_id = MACHINE.of(request)
    machine = await request.app[BACKEND].get_machine(user.user_id, machine_id)
    context = {"user": user, "nav": "machines", "machine": machine}
    return _render(request, "machine.html", context)


async def _plain_page(request: web.Request, template: str, nav: str) -> web.StreamResponse:
    """``template`` for the signed-in user, who is all it needs; anyone else signs in again."""
    user = await _signed_in_user(request)
    if user is None:
        return await logout(request)
    return _render(request, template, {"user": user, "nav": nav})


async def chat_page(request: web.Request) -> web.StreamResponse:
    """``GET /chat``: pick a machine, a worker and a session, and chat."""
    return await _plain_page(request, "chat.html", "chat")


async def jobs_page(request: web.Request) -> web.StreamResponse:
    """``GET /jobs``: scheduled jobs, their next runs and their run history."""
    return await _plain_page(request, "jobs.html", "jobs")


async def settings_page(request: web.Request) -> web.StreamResponse:
    """``GET /settings``: notifications on this device, which events, quiet hours."""
    return await _plain_page(request, "settings.html", "settings")


async def inbox_page(request: web.Request) -> web.StreamResponse:
    """``GET /inbox``: everything waiting for the user, answered in place."""
    user = await _signed_in_user(request)
    if user is None:
        return await logout(request)
    return _render(request, "inbox.html", {"user": user, "nav": "inbox"})


async def login_form(request: web.Request) -> web.StreamResponse:
    """``GET /login``."""
    if _signed_in(request):
        return _see_other("/")
    return _render(request, "login.html", {"first_run": request.app[SETUP].token is not None})


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /login``: sign in and go to the machine list."""
    form = await read_form(request)
    username = form.get("username", "")
    try:
        user = await checked_sign_in(request, username, form.get("password", ""))
    except (AuthenticationFailed, InvalidInput) as exc:
        context = {"error": exc.message, "username": username, "first_run": False}
        return _render(request, "login.html", context, status=status_for(exc))
    return await _sign_in(request, user)


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /logout`` (with ``everywhere=1``, every browser of the user is signed out)."""
    response = _see_other("/login")
    everywhere = request.method == "POST" and (await read_form(request)).get("everywhere") == "1"
    await sign_out(request, response, everywhere)
    return response


async def setup_form(request: web.Request) -> web.StreamResponse:
    """``GET /setup?token=``: the form that creates the first account."""
    token = request.query.get("token", "")
    if not request.app[SETUP].matches(token):
        return error_response(request, PermissionDenied(BAD_SETUP_LINK))
    return _render(request, "setup.html", {"token": token})


async def setup(request: web.Request) -> web.StreamResponse:
    """``POST /setup``: create the first account, sign in, and retire the setup token."""
    form = await read_form(request)
    token, username, password = (form.get(k, "") for k in ("token", "username", "password"))
    state = request.app[SETUP]
    if not state.matches(token):
        return error_response(request, PermissionDenied(BAD_SETUP_LINK))
    try:
        accounts.validate_username(username)
        accounts.validate_password(password)
        if password != form.get("password_again", password):
            raise InvalidInput("The two passwords differ.")
    except InvalidInput as exc:
        context = {"token": token, "username": username, "error": exc.message}
        return _render(request, "setup.html", context, status=400)
    state.token = None  # claimed before the first await: a second submit cannot reuse it
    try:
        user = await accounts.create_user(
            request.app[BACKEND],
            request.app[HASHER],
            username,
            password,
            limiter=request.app[HASHING],
        )
    except OrchestratorError:
        state.token = token
        raise
    return await _sign_in(request, user)


async def favicon(request: web.Request) -> web.StreamResponse:
    """``GET /favicon.ico``: the SVG icon, for browsers that ask before reading the page."""
    for resource in request.app.router.resources():
        if isinstance(resource, web.StaticResource) and resource.get_info()["prefix"] == "/static":
            icon = Path(resource.get_info()["directory"]) / "favicon.svg"
            return web.FileResponse(
                icon, headers={"Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400"}
            )
    raise web.HTTPNotFound()


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the pages."""
    router.add_get("/", index)
    router.add_get("/favicon.ico", favicon)
    router.add_get("/machines/{machine_id}", machine_page)
    router.add_get("/chat", chat_page)
    router.add_get("/jobs", jobs_page)
    router.add_get("/settings", settings_page)
    router.add_get("/inbox", inbox_page)
    router.add_get("/login", login_form)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/setup", setup_form)
    router.add_post("/setup", setup)

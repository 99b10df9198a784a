"""The aiohttp application of ``orchestrator serve``, built from its settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import anyio
import jinja2
from aiohttp import web
from cryptography.fernet import Fernet

import orchestrator
from orchestrator.application import machines
from orchestrator.application.jobs import scheduler_loop
from orchestrator.application.live import LiveRelay
from orchestrator.domain.errors import OrchestratorError
from orchestrator.domain.ports import Backend, Clock, LiveEventStore, SecretHasher
from orchestrator.entrypoints.settings import ServerSettings
from orchestrator.entrypoints.web import (
    browser_routes,
    chat_api,
    chat_stream,
    commands_api,
    events,
    inbox_api,
    jobs_api,
    machine_api,
    machine_chat,
    pages,
    push_api,
    render,
    tokens_api,
    user_api,
)
from orchestrator.entrypoints.web.auth import SessionCodec, load_secret_key
from orchestrator.entrypoints.web.auth import session_middleware as _session_middleware
from orchestrator.entrypoints.web.errors import error_middleware
from orchestrator.entrypoints.web.headers import add_security_headers, host_middleware
from orchestrator.entrypoints.web.limits import AttemptGuard
from orchestrator.entrypoints.web.payload import body_limit
from orchestrator.entrypoints.web.proxy import mark_cookies_secure
from orchestrator.entrypoints.web.signins import SignIns
from orchestrator.entrypoints.web.state import (
    BACKEND,
    BODY_LIMITS,
    CLOCK,
    HASHER,
    HASHING,
    LIVE,
    LOGIN_LIMITER,
    SESSIONS,
    SETTINGS,
    SETUP,
    SIGN_INS,
    STREAMS,
    TOKEN_LIMITER,
    SetupState,
    setup_link,
)
from orchestrator.entrypoints.web.streams import cancel_streams

log = logging.getLogger(__name__)


def webui_dir() -> Path:
    """Templates and static files: inside the installed wheel, else the repository's ``webui/``."""
    package = Path(orchestrator.__file__).resolve().parent
    bundled = package / "webui"
    return bundled if bundled.is_dir() else package.parents[1] / "webui"


def create_app(
    backend: Backend, *, hasher: SecretHasher, clock: Clock, settings: ServerSettings
) -> web.Application:
    """The web app: pages, the APIs, the stale-machine sweeper and the job scheduler.

    The caller owns ``backend`` and closes it after the app has shut down.
    """
    codec = SessionCodec(Fernet(load_secret_key(settings.data_dir)), clock, settings.secure_cookies)
    sign_ins = SignIns(backend, clock)
    app = web.Application(
        middlewares=[
            error_middleware(body_limit),
            host_middleware(settings),
            _session_middleware(codec, sign_ins, tokens_api.bearer_user),
        ],
        client_max_size=settings.max_body_bytes,
    )
    # Any valid chat message or whole reply fits, whatever ``max_body_bytes`` says.
    app[BODY_LIMITS] = {
        chat_api.SEND_MESSAGE_ROUTE: chat_api.message_body_bytes(settings.max_body_bytes),
        chat_api.EDIT_MESSAGE_ROUTE: chat_api.message_body_bytes(settings.max_body_bytes),
        machine_chat.MACHINE_CALL_ROUTE: machine_chat.machine_body_bytes(settings.max_body_bytes),
    }
    app[BACKEND] = backend
    app[HASHER] = hasher
    app[CLOCK] = clock
    app[SETTINGS] = settings
    app[SESSIONS] = codec
    app[SIGN_INS] = sign_ins
    per_target, total = settings.login_attempts_per_minute, settings.failed_attempts_per_minute
    app[LOGIN_LIMITER] = AttemptGuard.create(per_target, total, clock)
    # A machine's burst of calls after a restart is not a burst of guesses: failures only.
    app[TOKEN_LIMITER] = AttemptGuard.create(per_target, total, clock, count_in_flight=False)
    app[SETUP] = SetupState()
    app[HASHING] = anyio.CapacityLimiter(os.cpu_count() or 2)
    app[STREAMS] = set()
    if isinstance(backend, LiveEventStore):
        app[LIVE] = LiveRelay(backend, clock)
        app.cleanup_ctx.append(_live_relay)

    webui = webui_dir()
    aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(webui / "templates"), autoescape=True)
    app.router.add_static("/static/", webui / "static")
    pages.add_routes(app.router)
    browser_routes.add_routes(app.router)
    user_api.add_routes(app.router)
    events.add_routes(app.router)
    chat_api.add_routes(app.router)
    chat_stream.add_routes(app.router)
    commands_api.add_routes(app.router)
    jobs_api.add_routes(app.router)
    render.add_routes(app.router)
    machine_api.add_routes(app.router)
    push_api.add_routes(app.router, webui / "static")
    inbox_api.add_routes(app.router)
    tokens_api.add_routes(app.router)

    app.cleanup_ctx.append(_first_run)
    app.cleanup_ctx.append(_sweeper)
    app[machine_api.PRESENCE] = machine_api.Presence(
        backend, settings.disconnect_grace.total_seconds(), app.get(LIVE)
    )
    app.on_shutdown.append(_close_presence)
    app.cleanup_ctx.append(_scheduler)
    app.on_response_prepare.append(add_security_headers)
    app.cleanup_ctx.append(push_api.notifier_ctx)
    app.on_shutdown.append(cancel_streams)
    app.on_response_prepare.append(mark_cookies_secure)
    return app


async def _first_run(app: web.Application) -> AsyncIterator[None]:
    """With no account yet, make the one-time setup token (see :func:`setup_link`)."""
    if await app[BACKEND].count_users() == 0:
        app[SETUP].token = secrets.token_urlsafe(32)
        log.debug("No account yet: create the first one at %s", setup_link(app))
    yield
    app[SETUP].token = None


async def _sweep_forever(app: web.Application) -> None:
    settings = app[SETTINGS]
    started = app[CLOCK].now()
    while True:
        try:
            stale = await machines.mark_stale_machines_offline(
                app[BACKEND], app[CLOCK], settings.stale_after, since=started, live=app.get(LIVE)
            )
            if stale:
                log.info("Marked %d silent machine(s) offline", len(stale))
        except OrchestratorError as exc:
            log.warning("Could not look for silent machines: %s", exc.message)
        except Exception:
            log.exception("The stale-machine sweep failed")
        await asyncio.sleep(settings.sweep_interval.total_seconds())


async def _close_presence(app: web.Application) -> None:
    await app[machine_api.PRESENCE].close()


async def _sweeper(app: web.Application) -> AsyncIterator[None]:
    """Own the sweeper task: started with the app, cancelled when it shuts down."""
    if app[SETTINGS].convex_url:
        # The deployment's cron sweeps, with the window its slower heartbeats need.
        yield
        return
    task = asyncio.create_task(_sweep_forever(app), name="stale-machine-sweeper")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _live_relay(app: web.Application) -> AsyncIterator[None]:
    """Own the live relay's storing task; on shutdown it stores what it still holds."""
    task = asyncio.create_task(app[LIVE].run(), name="live-relay")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _scheduler(app: web.Application) -> AsyncIterator[None]:
    """Own the job scheduler task (it starts due runs on every backend, Convex included)."""
    loop = scheduler_loop(app[BACKEND], app[CLOCK], app[SETTINGS].scheduler_tick)
    task = asyncio.create_task(_log_crash(loop), name="job-scheduler")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _log_crash(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except Exception:
        log.exception("The job scheduler stopped")

"""The browser's API for Web Push, and the notifier that runs with the server.

Same conventions as :mod:`.user_api`: a session cookie on every call, the CSRF
token on every state change, one-sentence errors; nothing is stored when a
request is refused.

* ``GET /api/push`` -> ``{"public_key", "subscriptions": [{endpoint, created_at}],
  "settings": Settings, "events": [...]}`` (``public_key``: the VAPID
  ``applicationServerKey`` for ``pushManager.subscribe``)
* ``POST /api/push/subscriptions {subscription, user_id?}`` -> 201 ``{"subscription"}``
  (``subscription``: the browser's ``PushSubscription.toJSON()``)
* ``DELETE /api/push/subscriptions {endpoint}`` -> 204
* ``PUT /api/push/settings {events, quiet_start, quiet_end, time_zone}`` -> ``{"settings"}``
* ``GET /sw.js`` and ``GET /manifest.webmanifest``: the installable app (``webui/static``)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Final

from aiohttp import web

from orchestrator.adapters.push import VapidKeys, WebPushSender, is_browser_key, load_vapid_keys
from orchestrator.application.notifications import Notifier, NotifierPolicy
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.notifications import (
    BAD_P256DH,
    NotificationSettings,
    PushEvent,
    PushSubscription,
    check_owner,
    parse_subscription,
    validate_settings,
)
from orchestrator.domain.ports import NotificationBackend
from orchestrator.entrypoints.web.auth import require_user
from orchestrator.entrypoints.web.payload import read_body
from orchestrator.entrypoints.web.state import BACKEND, CLOCK, SETTINGS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUSH_KEYS: Final = web.AppKey("push_keys", VapidKeys)
NOTIFIER: Final = web.AppKey("notifier", Notifier)


def _backend(request: web.Request) -> NotificationBackend:
    return request.app[BACKEND]


def _subscription_json(subscription: PushSubscription) -> dict[str, object]:
    return {"endpoint": subscription.endpoint, "created_at": subscription.created_at.isoformat()}


def _settings_json(settings: NotificationSettings) -> dict[str, object]:
    return {
        "events": sorted(e.value for e in settings.events),
        "quiet_start": settings.quiet_start,
        "quiet_end": settings.quiet_end,
        "time_zone": settings.time_zone,
    }


async def get_push(request: web.Request) -> web.Response:
    """``GET /api/push``: the server's public key, the user's devices and settings."""
    user = require_user(request)
    backend = _backend(request)
    subscriptions = await backend.list_push_subscriptions(user)
    settings = await backend.get_notification_settings(user)
    return web.json_response(
        {
            "public_key": request.app[PUSH_KEYS].application_server_key,
            "subscriptions": [_subscription_json(s) for s in subscriptions],
            "settings": _settings_json(settings),
            "events": [e.value for e in PushEvent],
        }
    )


async def subscribe(request: web.Request) -> web.Response:
    """``POST /api/push/subscriptions``: this browser receives the user's notifications."""
    user = require_user(request)
    body = await read_body(request)
    check_owner(user, body.data.get("user_id"))
    draft = parse_subscription(
        body.data.get("subscription"),
        allow_loopback_http=request.app[SETTINGS].push_allow_loopback_http,
    )
    if not is_browser_key(draft.p256dh):
        raise InvalidInput(BAD_P256DH)
    saved = await _backend(request).save_push_subscription(user, draft)
    return web.json_response({"subscription": _subscription_json(saved)}, status=201)


async def unsubscribe(request: web.Request) -> web.Response:
    """``DELETE /api/push/subscriptions {endpoint}``: stop notifying that browser."""
    user = require_user(request)
    body = await read_body(request)
    await _backend(request).delete_push_subscription(user, body.string("endpoint"))
    return web.Response(status=204)


async def save_settings(request: web.Request) -> web.Response:
    """``PUT /api/push/settings``: which events, and quiet hours."""
    user = require_user(request)
    data = (await read_body(request)).data
    settings = validate_settings(
        data.get("events"), data.get("quiet_start"), data.get("quiet_end"), data.get("time_zone")
    )
    saved = await _backend(request).save_notification_settings(user, settings)
    return web.json_response({"settings": _settings_json(saved)})


def _app_file(path: Path, content_type: str) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        # Revalidated on every load, so a new service worker or manifest is picked up.
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache"}
        return web.FileResponse(path, headers=headers)

    return serve


def add_routes(router: web.UrlDispatcher, static_dir: Path) -> None:
    """Register the push API, and the service worker and manifest at the root of the app."""
    router.add_get("/sw.js", _app_file(static_dir / "sw.js", "text/javascript"))
    router.add_get(
        "/manifest.webmanifest",
        _app_file(static_dir / "manifest.webmanifest", "application/manifest+json"),
    )
    router.add_get("/api/push", get_push)
    router.add_post("/api/push/subscriptions", subscribe)
    router.add_delete("/api/push/subscriptions", unsubscribe)
    router.add_put("/api/push/settings", save_settings)


async def notifier_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load (or make) the VAPID key and own the notifier task for the app's lifetime."""
    settings = app[SETTINGS]
    keys = load_vapid_keys(settings.data_dir)
    sender = WebPushSender(keys, settings.push_contact)
    policy = NotifierPolicy(long_reply=settings.long_reply_threshold)
    notifier = Notifier(app[BACKEND], sender.send, app[CLOCK], policy)
    app[PUSH_KEYS] = keys
    app[NOTIFIER] = notifier
    task = asyncio.create_task(_log_crash(notifier), name="push-notifier")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await sender.close()


async def _log_crash(notifier: Notifier) -> None:
    try:
        await notifier.run()
    except Exception:
        log.exception("The push notifier stopped")

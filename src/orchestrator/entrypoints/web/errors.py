"""Turn every failure of a request into one sentence with the right HTTP status.

Domain errors map through :data:`orchestrator.adapters.wire.ERROR_STATUS`;
API paths answer ``{"error": ..., "type": ...}``, pages a small HTML page.
Anything unexpected is logged with its traceback and answered with a 500 that
shows none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from orchestrator.adapters.wire import error_body, status_for
from orchestrator.domain.errors import OrchestratorError, PayloadTooLarge

log = logging.getLogger(__name__)

INTERNAL_ERROR: Final = "Something went wrong on the server. Its log has the details."

_HTTP_SENTENCES: Final[dict[int, str]] = {
    404: "There is no such page or endpoint.",
    405: "That method is not allowed here.",
    413: "The request is too large.",
    415: "That content type is not supported here.",
}


def too_large(max_body_bytes: int) -> PayloadTooLarge:
    """The error for a body over the server's limit."""
    return PayloadTooLarge(f"The request body is larger than the limit of {max_body_bytes} bytes.")


def is_api(request: web.Request) -> bool:
    """Whether the request is for the JSON API rather than a page."""
    return request.path == "/api" or request.path.startswith("/api/")


def error_response(request: web.Request, exc: OrchestratorError) -> web.StreamResponse:
    """The response that tells the client about ``exc``."""
    status = status_for(exc)
    if is_api(request):
        return web.json_response(error_body(exc), status=status)
    return aiohttp_jinja2.render_template(
        "error.html", request, {"message": exc.message, "status": status}, status=status
    )


def error_middleware(body_limit: Callable[[web.Request], int]) -> Middleware:
    """A middleware mapping errors to statuses and refusing oversized bodies up front.

    ``body_limit`` gives the largest body the request's route accepts.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            limit = body_limit(request)
            if request.content_length is not None and request.content_length > limit:
                raise too_large(limit)
            return await handler(request)
        except OrchestratorError as exc:
            return error_response(request, exc)
        except web.HTTPRequestEntityTooLarge:
            return error_response(request, too_large(body_limit(request)))
        except web.HTTPException as exc:
            if exc.status < 400 or not is_api(request):
                raise
            sentence = _HTTP_SENTENCES.get(exc.status, exc.reason)
            kind = "NotFound" if exc.status == 404 else "InvalidInput"
            return web.json_response({"error": sentence, "type": kind}, status=exc.status)
        except Exception:
            log.exception("Unhandled error in %s %s", request.method, request.path)
            if is_api(request):
                return web.json_response(
                    {"error": INTERNAL_ERROR, "type": "OrchestratorError"}, status=500
                )
            return web.Response(text=INTERNAL_ERROR, status=500)

    return middleware

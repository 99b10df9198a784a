"""Reading request bodies: JSON objects with typed, required or optional fields."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Generic, TypeVar, cast

import attrs
from aiohttp import web

from orchestrator.adapters.wire import converter
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.ids import (
    ApiTokenId,
    ChatSessionId,
    CommandId,
    JobId,
    MachineId,
    MessageId,
    PermissionId,
    QuestionId,
    WorkerId,
    is_valid_id,
)
from orchestrator.domain.paging import MAX_PAGE, Page, bad_limit
from orchestrator.entrypoints.web.parsing import parse_json
from orchestrator.entrypoints.web.state import BODY_LIMITS, SETTINGS

NOT_JSON: Final = "Send the request body as JSON (Content-Type: application/json)."
NOT_OBJECT: Final = "The request body must be a JSON object."

IdT = TypeVar("IdT", bound=str)
T = TypeVar("T")


@attrs.frozen
class Body:
    """A JSON object from a request, with accessors that explain what is wrong."""

    data: dict[str, object]

    def string(self, key: str) -> str:
        """The required string field ``key``."""
        value = self.data.get(key)
        if value is None:
            raise InvalidInput(f"The field '{key}' is required.")
        if not isinstance(value, str):
            raise InvalidInput(f"The field '{key}' must be a string.")
        return value

    def optional_string(self, key: str) -> str | None:
        """The string field ``key``, or None when it is absent, null or empty."""
        if self.data.get(key) is None:
            return None
        return self.string(key) or None

    def string_list(self, key: str) -> list[str]:
        """The required list-of-strings field ``key``."""
        value = self.data.get(key)
        if value is None:
            raise InvalidInput(f"The field '{key}' is required.")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"The field '{key}' must be a list of strings.")
        return cast(list[str], value)


def body_limit(request: web.Request) -> int:
    """The largest body the request's route accepts."""
    default = request.app[SETTINGS].max_body_bytes
    name = request.match_info.route.name
    return request.app.get(BODY_LIMITS, {}).get(name or "", default)


async def read_body(request: web.Request, *, allow_empty: bool = False) -> Body:
    """The request's JSON object; an empty body counts as ``{}`` when ``allow_empty``."""
    limit = body_limit(request)
    if limit != request.client_max_size:
        request = request.clone(client_max_size=limit)
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return Body({})
        raise InvalidInput(NOT_OBJECT)
    if request.content_type != "application/json":
        # Cross-site forms cannot send this content type without a CORS preflight.
        raise InvalidInput(NOT_JSON)
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise InvalidInput(NOT_OBJECT)
    return Body(data)


def parse_id(value: str, what: str) -> str:
    """An ID from a URL; one that cannot exist is simply not found."""
    if not is_valid_id(value):
        raise NotFound(f"No such {what}.")
    return value


def path_id(request: web.Request, key: str, what: str) -> str:
    """The ID in the URL's ``{key}`` part."""
    return parse_id(request.match_info[key], what)


@attrs.frozen
class PathId(Generic[IdT]):
    """A kind of ID in URLs: the ``{key}`` part, naming a ``what`` (404 when it cannot exist)."""

    key: str
    what: str
    kind: Callable[[str], IdT]

    def of(self, request: web.Request) -> IdT:
        """The ID in the request's URL."""
        return self.kind(path_id(request, self.key, self.what))


API_TOKEN: Final = PathId("token_id", "API token", ApiTokenId)
COMMAND: Final = PathId("command_id", "command", CommandId)
JOB: Final = PathId("job_id", "job", JobId)
MACHINE: Final = PathId("machine_id", "machine", MachineId)
MESSAGE: Final = PathId("message_id", "message", MessageId)
PERMISSION: Final = PathId("permission_id", "permission request", PermissionId)
QUESTION: Final = PathId("question_id", "question", QuestionId)
SESSION: Final = PathId("session_id", "chat session", ChatSessionId)
WORKER: Final = PathId("worker_id", "worker", WorkerId)


def record_json(key: str, value: object) -> dict[str, object]:
    """``{key: value}`` with the value as the wire shows records."""
    return {key: converter.unstructure(value)}


def record_response(key: str, value: object, *, status: int = 200) -> web.Response:
    """A JSON answer ``{key: value}`` with the value as the wire shows records."""
    return web.json_response(record_json(key, value), status=status)


def queued_response(
    key: str, value: object, *, waits: bool, notice: str, status: int
) -> web.Response:
    """``{key: value, "queued": false}``, or ``queued`` true with a ``notice`` when it waits."""
    body: dict[str, object] = {**record_json(key, value), "queued": waits}
    if waits:
        body["notice"] = notice
    return web.json_response(body, status=status)


def paged(request: web.Request) -> bool:
    """Whether a list was asked for by page (``cursor`` or ``limit``) rather than whole."""
    return "cursor" in request.query or "limit" in request.query


def page_query(request: web.Request, most: int = MAX_PAGE) -> tuple[str | None, int | None]:
    """The ``cursor`` and ``limit`` query parameters of a paged list (None when absent)."""
    cursor = request.query.get("cursor") or None
    raw = request.query.get("limit")
    if raw is None:
        return cursor, None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
        raise InvalidInput(bad_limit(most))
    return cursor, int(raw)


def page_json(key: str, items: Sequence[object], cursor: str | None) -> dict[str, object]:
    """A page as the browser API answers it: ``{key: items, "cursor", "has_more"}``."""
    found = converter.unstructure(list(items))
    return {key: found, "cursor": cursor, "has_more": cursor is not None}


async def list_response(
    request: web.Request,
    key: str,
    whole: Callable[[], Awaitable[Sequence[T]]],
    page: Callable[[str | None, int | None], Awaitable[Page[T]]],
    most: int = MAX_PAGE,
) -> web.Response:
    """``{key: items}`` for the whole list, or one page of it when the query asks by page."""
    if paged(request):
        found = await page(*page_query(request, most))
        return web.json_response(page_json(key, found.items, found.cursor))
    return record_response(key, await whole())

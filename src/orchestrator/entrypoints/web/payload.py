"""Reading request bodies: JSON objects with typed, required or optional fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, cast

import attrs
from aiohttp import web

from orchestrator.adapters.wire import converter
from orchestrator.domain.errors import InvalidInput, NotFound
from orchestrator.domain.ids import is_valid_id
from orchestrator.domain.paging import MAX_PAGE, bad_limit
from orchestrator.entrypoints.web.parsing import parse_json
from orchestrator.entrypoints.web.state import BODY_LIMITS, SETTINGS

NOT_JSON: Final = "Send the request body as JSON (Content-Type: application/json)."
NOT_OBJECT: Final = "The request body must be a JSON object."


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

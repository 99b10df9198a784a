"""Parsing untrusted request data into Python values, or one sentence saying what is wrong.

JSON is refused when it is not UTF-8, nests deeper than :data:`MAX_JSON_DEPTH`
or carries a lone surrogate (``"\\ud800"``), which no database or page could
store or show. Forms are refused when they are not UTF-8.
"""

from __future__ import annotations

import json
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from orchestrator.domain.errors import InvalidInput

MAX_JSON_DEPTH: Final = 64
MALFORMED_JSON: Final = "The request body is not valid JSON."
TOO_DEEP: Final = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."
NOT_UNICODE: Final = "The text contains an invalid character (a lone UTF-16 surrogate)."
MALFORMED_FORM: Final = "The form is not valid UTF-8 form data."


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(NOT_UNICODE) from exc


def _check_tree(value: object) -> None:
    """Refuse a nesting deeper than the limit or a string no UTF-8 store could hold."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise InvalidInput(TOO_DEEP)
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def parse_json(raw: bytes | str, *, malformed: str = MALFORMED_JSON) -> object:
    """The JSON value in ``raw``; InvalidInput with one sentence when it cannot be used."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise InvalidInput(TOO_DEEP) from exc
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise InvalidInput(malformed) from exc
    _check_tree(value)
    return value


async def read_form(request: web.Request) -> dict[str, str]:
    """The request's form fields that are text (file uploads are ignored)."""
    try:
        data = await request.post()
    except (ValueError, HttpProcessingError) as exc:  # not UTF-8, or a malformed multipart
        raise InvalidInput(MALFORMED_FORM) from exc
    fields = {key: value for key, value in data.items() if isinstance(value, str)}
    for key, value in fields.items():
        _check_text(key)
        _check_text(value)
    return fields

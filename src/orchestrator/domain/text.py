"""Rules for text that comes from users, machines and the disk."""

from __future__ import annotations

import unicodedata

from orchestrator.domain.errors import InvalidInput, PayloadTooLarge


def is_text(value: str) -> bool:
    """Whether ``value`` can be stored as UTF-8 (no lone surrogates from a raw file name)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_control(ch: str) -> bool:
    """Whether ``ch`` is a control, format or line/paragraph separator character."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")


def bounded(value: str, limit: int, what: str, *, blank_ok: bool = False) -> str:
    """Return ``value`` unless it is blank (InvalidInput) or over ``limit`` characters (413)."""
    if not blank_ok and not value.strip():
        raise InvalidInput(f"{what} must not be empty.")
    if len(value) > limit:
        raise PayloadTooLarge(f"{what} must be at most {limit} characters.")
    return value

"""Rules for text that comes from users, machines and the disk."""

from __future__ import annotations

import unicodedata


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

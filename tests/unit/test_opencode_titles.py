"""opencode's placeholder session titles are told apart from the ones it makes."""

from __future__ import annotations

import pytest

from orchestrator.adapters.opencode._runtime import DEFAULT_TITLE


@pytest.mark.parametrize(
    ("title", "placeholder"),
    [
        ("New session - 2026-11-28T12:00:00.000Z", True),
        ("Child session - 2026-11-28T12:00:00.000Z", True),
        ("Fix the login form", False),
        ("New session - ideas", False),
    ],
)
def test_placeholder_titles_are_recognised(title: str, placeholder: bool) -> None:
    """Only opencode's "New/Child session - <ISO time>" placeholders count as no title."""
    assert bool(DEFAULT_TITLE.match(title)) is placeholder

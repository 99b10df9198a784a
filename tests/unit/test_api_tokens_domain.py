"""API token rules: the token's shape, its hash, and when a use is written back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain.api_tokens import (
    LAST_USED_RESOLUTION,
    ApiCredential,
    hash_api_secret,
    needs_last_used,
)
from orchestrator.domain.errors import InvalidToken
from orchestrator.domain.ids import ApiTokenId

_BODY = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=60)


@settings(deadline=None)  # a loaded CI machine must not fail a correct parser
@given(_BODY, _BODY)
def test_a_token_parses_back_to_itself(token_body: str, secret_body: str) -> None:
    """Any generated-shaped ``oat_…:sec_…`` round-trips through its text."""
    credential = ApiCredential(ApiTokenId("oat_" + token_body), "sec_" + secret_body)
    assert ApiCredential.parse(str(credential)) == credential


@settings(deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_with_the_format(raw: str) -> None:
    """Arbitrary text is either a well-shaped token or InvalidToken, never another error."""
    try:
        credential = ApiCredential.parse(raw)
    except InvalidToken:
        return
    assert str(credential) == raw
    assert raw.startswith("oat_")


def test_the_secret_never_shows_in_repr_and_is_hashed_with_sha256() -> None:
    """repr hides the secret; the stored hash is the hex SHA-256 of the secret."""
    credential = ApiCredential.parse("oat_abc:sec_hunter2")
    assert "hunter2" not in repr(credential)
    assert credential.secret_hash == hash_api_secret("sec_hunter2")
    assert credential.secret_hash == (
        "a23e5e23cd6dc5d6af1d693d3b368760adfada0009f145c317d7e6f0384a7b4e"
    )


@pytest.mark.parametrize(
    ("last_used", "written"),
    [(None, True), (timedelta(seconds=59), False), (LAST_USED_RESOLUTION, True)],
)
def test_a_use_is_written_at_most_once_a_minute(last_used: timedelta | None, written: bool) -> None:
    """A first use is written; later ones only once the resolution has passed."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert needs_last_used(None if last_used is None else now - last_used, now) is written

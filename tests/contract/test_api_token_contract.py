"""The API token contract: created with a secret shown once, listed, revoked, checked."""

from __future__ import annotations

import pytest

from orchestrator.domain.api_tokens import (
    API_TOKEN_FORMAT,
    API_TOKEN_PREFIX,
    MAX_API_TOKENS_PER_USER,
    NO_API_TOKEN,
    WRONG_API_TOKEN,
    ApiCredential,
)
from orchestrator.domain.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound
from orchestrator.domain.ids import ApiTokenId, UserId
from orchestrator.domain.ports import Backend

pytestmark = pytest.mark.anyio


async def test_a_created_token_signs_its_owner_in(backend: Backend, alice: UserId) -> None:
    """The text returned once authenticates as its owner; the listing has the name, no secret."""
    token, text = await backend.create_api_token(alice, "  laptop script ")
    assert text.startswith(API_TOKEN_PREFIX)
    assert str(ApiCredential.parse(text)) == text
    assert (token.name, token.user_id) == ("laptop script", alice)
    assert await backend.authenticate_api_token(text) == alice
    [listed] = await backend.list_api_tokens(alice)
    assert (listed.token_id, listed.name, listed.created_at) == (
        token.token_id,
        "laptop script",
        token.created_at,
    )
    assert listed.last_used_at is not None
    assert ApiCredential.parse(text).secret not in repr(listed)


async def test_a_revoked_token_no_longer_authenticates(backend: Backend, alice: UserId) -> None:
    """After revoking, the token fails with one sentence and is gone from the list."""
    token, text = await backend.create_api_token(alice, "ci")
    await backend.revoke_api_token(alice, token.token_id)
    with pytest.raises(AuthenticationFailed) as failed:
        await backend.authenticate_api_token(text)
    assert failed.value.message == WRONG_API_TOKEN
    assert await backend.list_api_tokens(alice) == []


async def test_another_users_token_cannot_be_revoked_or_listed(
    backend: Backend, alice: UserId
) -> None:
    """Bob revoking Alice's token id gets NotFound, and Alice's token keeps working."""
    bob = (await backend.create_user("bob", "hash-of-bob")).user_id
    token, text = await backend.create_api_token(alice, "ci")
    with pytest.raises(NotFound) as missing:
        await backend.revoke_api_token(bob, token.token_id)
    assert missing.value.message == NO_API_TOKEN
    with pytest.raises(NotFound):
        await backend.revoke_api_token(alice, ApiTokenId("oat_unknown"))
    assert await backend.list_api_tokens(bob) == []
    assert await backend.authenticate_api_token(text) == alice


async def test_a_malformed_or_wrong_token_fails_with_one_sentence(
    backend: Backend, alice: UserId
) -> None:
    """Garbage is refused by its shape; a right id with a wrong secret as wrong."""
    token, text = await backend.create_api_token(alice, "ci")
    for garbage in ("", "nonsense", text + " ", f"{token.token_id}:", "mch_1:sec_2", "a:b:c"):
        with pytest.raises(InvalidInput) as malformed:
            await backend.authenticate_api_token(garbage)
        assert malformed.value.message == API_TOKEN_FORMAT
    for wrong in (f"{token.token_id}:sec_wrong", "oat_nobody:" + ApiCredential.parse(text).secret):
        with pytest.raises(AuthenticationFailed) as failed:
            await backend.authenticate_api_token(wrong)
        assert failed.value.message == WRONG_API_TOKEN


async def test_bad_names_and_unknown_users_change_nothing(backend: Backend, alice: UserId) -> None:
    """An empty or over-long name is InvalidInput; an unknown user NotFound; nothing stored."""
    for name in ("", "   ", "x" * 101):
        with pytest.raises(InvalidInput):
            await backend.create_api_token(alice, name)
    with pytest.raises(NotFound):
        await backend.create_api_token(UserId("usr_nobody"), "ci")
    assert await backend.list_api_tokens(alice) == []


async def test_tokens_per_user_are_bounded(backend: Backend, alice: UserId) -> None:
    """Beyond MAX_API_TOKENS_PER_USER a new token is a Conflict until one is revoked."""
    made = [await backend.create_api_token(alice, f"t{n}") for n in range(MAX_API_TOKENS_PER_USER)]
    with pytest.raises(Conflict):
        await backend.create_api_token(alice, "one too many")
    await backend.revoke_api_token(alice, made[0][0].token_id)
    await backend.create_api_token(alice, "fits again")
    assert len(await backend.list_api_tokens(alice)) == MAX_API_TOKENS_PER_USER

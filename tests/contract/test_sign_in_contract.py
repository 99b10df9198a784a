"""The sign-in contract: browsers signed in to an account, ended on the server."""

from __future__ import annotations

import pytest

from orchestrator.domain.errors import NotFound
from orchestrator.domain.ids import UserId
from orchestrator.domain.model import MAX_SIGN_INS_PER_USER
from orchestrator.domain.ports import Backend

pytestmark = pytest.mark.anyio


async def test_a_sign_in_exists_until_it_is_ended(backend: Backend, alice: UserId) -> None:
    """A recorded sign-in is found for its user only; once ended it is gone, twice is fine."""
    await backend.add_sign_in(alice, "sgn_laptop")
    assert await backend.has_sign_in(alice, "sgn_laptop")
    assert not await backend.has_sign_in(alice, "sgn_other")
    await backend.end_sign_in(alice, "sgn_laptop")
    assert not await backend.has_sign_in(alice, "sgn_laptop")
    await backend.end_sign_in(alice, "sgn_laptop")


async def test_a_sign_in_belongs_to_its_user(backend: Backend, alice: UserId, bob: UserId) -> None:
    """Another user can neither use nor end alice's sign-in."""
    await backend.add_sign_in(alice, "sgn_laptop")
    assert not await backend.has_sign_in(bob, "sgn_laptop")
    await backend.end_sign_in(bob, "sgn_laptop")
    assert await backend.end_other_sign_ins(bob, None) == 0
    assert await backend.has_sign_in(alice, "sgn_laptop")


async def test_end_other_sign_ins_keeps_only_the_one_asked(
    backend: Backend, alice: UserId, bob: UserId
) -> None:
    """Ending the others keeps ``keep`` (or none) and leaves other users alone."""
    for name in ("sgn_a", "sgn_b", "sgn_c"):
        await backend.add_sign_in(alice, name)
    await backend.add_sign_in(bob, "sgn_bob")
    assert await backend.end_other_sign_ins(alice, "sgn_b") == 2
    assert [await backend.has_sign_in(alice, n) for n in ("sgn_a", "sgn_b", "sgn_c")] == [
        False,
        True,
        False,
    ]
    assert await backend.end_other_sign_ins(alice, None) == 1
    assert not await backend.has_sign_in(alice, "sgn_b")
    assert await backend.has_sign_in(bob, "sgn_bob")


async def test_only_the_newest_sign_ins_are_kept(backend: Backend, alice: UserId) -> None:
    """Beyond the per-account bound, signing in once more ends the oldest sign-in."""
    for n in range(MAX_SIGN_INS_PER_USER + 1):
        await backend.add_sign_in(alice, f"sgn_{n:04d}")
    assert not await backend.has_sign_in(alice, "sgn_0000")
    assert await backend.has_sign_in(alice, "sgn_0001")
    assert await backend.has_sign_in(alice, f"sgn_{MAX_SIGN_INS_PER_USER:04d}")


async def test_a_sign_in_needs_an_account(backend: Backend) -> None:
    """Recording a sign-in for an account that does not exist is NotFound."""
    with pytest.raises(NotFound):
        await backend.add_sign_in(UserId("usr_nobody"), "sgn_x")


async def test_set_password_hash_replaces_the_hash(backend: Backend, alice: UserId) -> None:
    """A new password hash is what find_user answers from then on; no account is NotFound."""
    await backend.set_password_hash(alice, "new-hash")
    found = await backend.find_user("alice")
    assert found is not None
    assert found[1] == "new-hash"
    with pytest.raises(NotFound):
        await backend.set_password_hash(UserId("usr_nobody"), "h")

"""Where the next page of a user's list starts, on the embedded backend (keyset paging)."""

from __future__ import annotations

from typing import Final, Literal

from orchestrator.adapters.embedded._store import Tx
from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.paging import OTHER_LIST

#: Before every ``(created_at, rowid)``: the start of a list's first page.
FIRST: Final = (-(2**63), -(2**63))

_POSITION: Final = {
    "machines": "SELECT created_at, rowid FROM machines WHERE machine_id = ? AND user_id = ?",
    "jobs": "SELECT created_at, rowid FROM jobs WHERE job_id = ? AND user_id = ?",
}


async def keyset_start(
    tx: Tx, table: Literal["machines", "jobs"], after: str | None, user: str
) -> tuple[int, int]:
    """The ``(created_at, rowid)`` of the user's record ``after`` (InvalidInput if not theirs)."""
    if after is None:
        return FIRST
    row = await tx.one(_POSITION[table], after, user)
    if row is None:
        raise InvalidInput(OTHER_LIST)
    return int(row[0]), int(row[1])

"""A worker's permission policy: what its agent may do without asking (ask / allow / deny).

The policy is part of the worker's record and reaches opencode as that
worker's own configuration when its opencode server starts; the user's own
opencode config files are never edited. The defaults are the safe ones:

- ``bash`` and ``edit`` **ask**: a command or a change to the code runs only
  after the user said yes on the permission card.
- ``webfetch`` **asks**: fetching a URL can carry the code out (in the URL)
  and bring untrusted text in, so the user sees each address first.
- ``external_directory`` is **denied**: a worker is bound to one folder, so
  reaching outside it is a setting the user changes on purpose, not a click.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final

import attrs

from orchestrator.domain.errors import InvalidInput


class PermissionAction(enum.StrEnum):
    ASK = "ask"
    ALLOW = "allow"
    DENY = "deny"


#: The tools a policy sets, in the order the UI shows them.
PERMISSION_TOOLS: Final = ("bash", "edit", "webfetch", "external_directory")

_ACTIONS = "ask, allow or deny"
POLICY_NOT_OBJECT: Final = (
    "The permission policy must be an object with ask, allow or deny for each of: "
    + ", ".join(PERMISSION_TOOLS)
    + "."
)


@attrs.frozen
class PermissionPolicy:
    """What the worker's agent may do: ask first, allow, or deny, per tool."""

    bash: PermissionAction = PermissionAction.ASK
    edit: PermissionAction = PermissionAction.ASK
    webfetch: PermissionAction = PermissionAction.ASK
    external_directory: PermissionAction = PermissionAction.DENY

    def as_dict(self) -> dict[str, str]:
        """``{"bash": "ask", …}``: the policy as plain strings (JSON, opencode's config)."""
        return {tool: getattr(self, tool).value for tool in PERMISSION_TOOLS}


DEFAULT_PERMISSION_POLICY: Final = PermissionPolicy()


def parse_permission_policy(raw: object) -> PermissionPolicy:
    """The policy in ``raw`` (a mapping of tool to action); missing tools keep their default."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(POLICY_NOT_OBJECT)
    unknown = sorted(str(key) for key in raw if key not in PERMISSION_TOOLS)
    if unknown:
        raise InvalidInput(
            f"The permission policy has no setting '{unknown[0]}'; "
            f"use {', '.join(PERMISSION_TOOLS)}."
        )
    actions: dict[str, PermissionAction] = {}
    for tool, value in raw.items():
        try:
            actions[str(tool)] = PermissionAction(value)
        except (ValueError, TypeError):
            raise InvalidInput(f"The permission for {tool} must be {_ACTIONS}.") from None
    return PermissionPolicy(**actions)

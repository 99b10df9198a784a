"""The machine's ``.env``: the token and root directory, readable by its owner only."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values, set_key

MACHINE_TOKEN = "MACHINE_TOKEN"  # noqa: S105 -- a key name
ROOT_DIRECTORY = "ROOT_DIRECTORY"
SERVER_URL = "ORCHESTRATOR_SERVER"
CONVEX_URL = "CONVEX_URL"


def read_env_file(path: Path) -> dict[str, str]:
    """The key/value pairs of ``path`` (empty if it does not exist)."""
    if not path.is_file():
        return {}
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def write_env_file(path: Path, values: Mapping[str, str]) -> None:
    """Set ``values`` in ``path``, keeping its other lines; the file is mode 0600."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Create with 0600 before any secret is written, so it is never world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
    for key, value in values.items():
        set_key(path, key, value, quote_mode="never")
    os.chmod(path, 0o600)  # set_key rewrites the file through a temporary one

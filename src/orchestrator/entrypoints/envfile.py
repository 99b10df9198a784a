"""The machine's ``.env``: the token and root directory, readable by its owner only."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values, set_key

MACHINE_TOKEN = "MACHINE_TOKEN"  # noqa: S105 -- a key name
ROOT_DIRECTORY = "ROOT_DIRECTORY"
SERVER_URL = "ORCHESTRATOR_SERVER"
CONVEX_URL = "CONVEX_URL"
#: Set once the user allowed sending the token over plain http (``--insecure``).
INSECURE = "ORCHESTRATOR_INSECURE"


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


#: The file in the data directory where ``worker start`` notes which ``.env`` it used.
REMEMBERED = "machine-env-file"


def remember_env_file(data_dir: Path, env_file: Path) -> None:
    """Note ``env_file`` as this computer's machine configuration, for ``worker register``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / REMEMBERED).write_text(f"{env_file.absolute()}\n")


def remembered_env_file(data_dir: Path) -> Path | None:
    """The ``.env`` that ``worker start`` last used on this computer, if it noted one."""
    try:
        return Path((data_dir / REMEMBERED).read_text().strip())
    except OSError:
        return None


def is_machine_env(path: Path) -> bool:
    """Whether ``path`` holds a machine's token and root directory."""
    values = read_env_file(path)
    return MACHINE_TOKEN in values and ROOT_DIRECTORY in values


def find_machine_env(starts: Iterable[Path], remembered: Path | None) -> Path | None:
    """The first machine ``.env`` in a start directory or its parents, else ``remembered``."""
    for start in starts:
        for folder in (start, *start.parents):
            if is_machine_env(folder / ".env"):
                return folder / ".env"
    if remembered is not None and is_machine_env(remembered):
        return remembered
    return None

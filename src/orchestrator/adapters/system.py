"""The real clock, ID generator and argon2 hasher, and how child programs are started."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import argon2
import attrs

from orchestrator.domain.ids import PREFIXES

_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    """IDs like ``mch_k3v9...`` (96 random bits) and ``sec_...`` secrets (256 bits)."""

    def new_id(self, kind: str) -> str:
        body = "".join(secrets.choice(_ALPHABET) for _ in range(20))
        return f"{PREFIXES[kind]}_{body}"

    def new_secret(self) -> str:
        return f"{PREFIXES['secret']}_{secrets.token_urlsafe(32)}"


@attrs.define
class Argon2Hasher:
    """argon2id; ``fast=True`` lowers the cost for tests only."""

    fast: bool = False
    _hasher: argon2.PasswordHasher = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.fast:
            self._hasher = argon2.PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        else:
            self._hasher = argon2.PasswordHasher()

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, hashed: str, secret: str) -> bool:
        try:
            return self._hasher.verify(hashed, secret)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


#: The reaper (a script, run by path): the command and everything it starts die with
#: this process, even by SIGKILL, so a crash leaves nothing running (opencode and the
#: commands of its tools, git and its helpers).
_REAPER = Path(__file__).with_name("_reaper.py")


def launch_command(arguments: list[str]) -> list[str]:
    """``arguments`` run under the reaper so their whole tree dies with this process (Linux)."""
    if not sys.platform.startswith("linux"):
        return arguments
    return [sys.executable, "-I", "-S", str(_REAPER), str(os.getpid()), *arguments]


#: Variables a child program (opencode and the tools it runs, git and its helpers) may
#: inherit by exact name: where things are, who the user is, the terminal, and what a
#: shared network needs (proxies, CA bundles, the ssh agent).
_PASSED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "COLORTERM", "LANG", "LANGUAGE",
        "TZ", "TMPDIR", "TEMP", "TMP", "SSH_AUTH_SOCK", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
        "http_proxy", "https_proxy", "all_proxy", "no_proxy",
        "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "GIT_PROXY_COMMAND",
        "GIT_CONFIG_GLOBAL", "GIT_CONFIG_NOSYSTEM",
    }
)  # fmt: skip
#: Families passed by prefix: locale, XDG directories, opencode's own settings, and the
#: model providers' credentials the user configured for opencode (AWS for Bedrock, Azure,
#: Google Vertex). ``OPENCODE_SERVER_*`` is not passed: each server gets a fresh password.
_PASSED_PREFIXES = ("LC_", "XDG_", "OPENCODE_", "AWS_", "AZURE_", "GOOGLE_", "VERTEX_")
#: Provider keys by suffix (``ANTHROPIC_API_KEY``, ``OPENROUTER_API_KEY``, …).
_PASSED_SUFFIXES = ("_API_KEY",)
#: Ours, never passed whatever the rules above say: the machine token, the server's
#: settings and secret, the Convex deployment, and opencode's per-server credentials.
_WITHHELD_PREFIXES = ("MACHINE_", "ORCHESTRATOR_", "CONVEX_", "OPENCODE_SERVER_")
#: Comma-separated further names the user wants passed (e.g. ``GITHUB_TOKEN``).
EXTRA_NAMES_VARIABLE = "ORCHESTRATOR_AGENT_ENV"


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of ``base`` (default: this process's) that opencode, its tools and git may see.

    An allow-list, so a secret this process holds reaches no child unless a rule
    above names it: nothing of the orchestrator's (``MACHINE_TOKEN``,
    ``ORCHESTRATOR_*``, ``CONVEX_*``) ever passes. ``ORCHESTRATOR_AGENT_ENV`` names
    further variables to pass.
    """
    source = os.environ if base is None else base
    extra = {n.strip() for n in source.get(EXTRA_NAMES_VARIABLE, "").split(",")}
    return {
        name: value
        for name, value in source.items()
        if not name.startswith(_WITHHELD_PREFIXES)
        and (
            name in _PASSED_NAMES
            or name in extra
            or name.startswith(_PASSED_PREFIXES)
            or name.endswith(_PASSED_SUFFIXES)
        )
    }

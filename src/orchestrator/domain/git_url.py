"""Which repository URLs ``git clone`` may be given: https, http, ssh, git and ``user@host:path``.

Everything else is refused with one sentence before git ever runs: option-like
arguments (``-u``, ``--upload-pack=…``), ``<transport>::`` addresses
(``ext::`` runs commands), ``file://`` and local paths, whitespace and
control characters, and URLs without a usable host or path. A password (or,
in an http(s) URL, any user name, which hosts read as a token) is refused too:
the URL is stored with the command and shown in the command list, so the secret
would sit there in clear; a credential helper or an SSH key on the machine
serves git without the server ever holding it.
"""

from __future__ import annotations

import re

from orchestrator.domain.errors import InvalidInput
from orchestrator.domain.text import is_control, is_text

MAX_URL_LENGTH = 2048

_ALLOWED = "use an https://, http://, ssh://, git:// or user@host:path URL."
URL_REQUIRED = "Enter the URL of the repository to clone."
URL_TOO_LONG = f"The repository URL must be at most {MAX_URL_LENGTH} characters."
URL_CHARACTERS = "The repository URL must not contain spaces or control characters."
URL_OPTION = "The repository URL must not start with '-', which git would read as an option."
URL_TRANSPORT = "The {name}:: transport is not allowed; " + _ALLOWED
URL_FILE = "Cloning from local files (file://) is not allowed; " + _ALLOWED
URL_SCHEME = "The {scheme}:// scheme is not allowed; " + _ALLOWED
URL_LOCAL = "Local paths cannot be cloned; " + _ALLOWED
URL_OTHER = "This is not a repository URL; " + _ALLOWED
URL_HOST = "The repository URL must name a valid host."
URL_PORT = "The port in the repository URL must be a number from 1 to 65535."
URL_USER = "The user name in the repository URL must not start with '-'."
URL_PATH = "The repository URL must include the path of the repository."
URL_CREDENTIALS = (
    "The repository URL must not carry a password or token, which would be stored and shown;"
    " set up a git credential helper or an SSH key on the machine instead."
)

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_TRANSPORT = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)::")
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]")
_AUTHORITY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*)(?::(.*))?")
_SCP = re.compile(r"([^@/:]+)@([^@/:\[\]]+|\[[0-9A-Fa-f:.]+\]):(.+)")
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_ALLOWED_SCHEMES = frozenset({"https", "http", "ssh", "git"})


def _check_authority(netloc: str, scheme: str = "ssh") -> None:
    user, _, hostport = netloc.rpartition("@")
    if user.startswith("-"):
        raise InvalidInput(URL_USER)
    if ":" in user or (user and scheme in ("http", "https")):
        raise InvalidInput(URL_CREDENTIALS)
    parts = _AUTHORITY.fullmatch(hostport)
    if parts is None or not _HOST.fullmatch(parts.group(1)):
        raise InvalidInput(URL_HOST)
    port = parts.group(2)
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise InvalidInput(URL_PORT)


def validate_git_url(url: str) -> str:
    """Return ``url`` if git may clone it: https, http, ssh, git or ``user@host:path`` only.

    Refuses option-like arguments, ``<transport>::`` (``ext::``), ``file://``,
    local paths, whitespace and control characters, each with one sentence.
    """
    if not url.strip():
        raise InvalidInput(URL_REQUIRED)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(URL_TOO_LONG)
    if not is_text(url) or any(ch.isspace() or is_control(ch) for ch in url):
        raise InvalidInput(URL_CHARACTERS)
    if url.startswith("-"):
        raise InvalidInput(URL_OPTION)
    if transport := _TRANSPORT.match(url):
        raise InvalidInput(URL_TRANSPORT.format(name=transport.group(1)))
    if scheme_match := _SCHEME.match(url):
        scheme = scheme_match.group(1).lower()
        if scheme == "file":
            raise InvalidInput(URL_FILE)
        if scheme not in _ALLOWED_SCHEMES:
            raise InvalidInput(URL_SCHEME.format(scheme=scheme_match.group(1)))
        netloc, _, path = url[scheme_match.end() :].partition("/")
        _check_authority(netloc, scheme)
        if not path.strip("/"):
            raise InvalidInput(URL_PATH)
        return scheme + url[len(scheme) :]  # git reads schemes case-sensitively
    if url.startswith(("/", ".", "~", "\\")) or _WINDOWS_DRIVE.match(url) or ":" not in url:
        raise InvalidInput(URL_LOCAL)
    if scp := _SCP.fullmatch(url):
        _check_authority(f"{scp.group(1)}@{scp.group(2)}")
        return url
    raise InvalidInput(URL_OTHER)

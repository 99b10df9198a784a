"""Convex's failures as our errors: one sentence for a user, the raw message only in the log."""

from __future__ import annotations

import logging
import re
from typing import Final

from orchestrator.domain.errors import BackendLimitExceeded, BackendUnavailable, OrchestratorError

log = logging.getLogger("orchestrator.adapters.convex")


def unreachable(url: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"The Convex deployment at {url} cannot be reached. Check CONVEX_URL and the network."
    )


def refused(url: str, detail: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"The Convex deployment at {url} could not run the call ({detail}). Deploy the"
        " functions of this orchestrator version with: npx convex deploy."
    )


#: Convex's per-call limits (docs.convex.dev/production/state/limits), as its errors
#: name them, and our sentence for each. Retrying cannot help with any of them.
_LIMITS: Final = (
    (
        re.compile(
            r"read too much|scanned too many|too many (bytes|documents) read"
            r"|too many (reads|index ranges)",
            re.IGNORECASE,
        ),
        "This needs more data than Convex lets one call read, so it cannot be done as it is."
        " Delete chat sessions you no longer need; the server log has the details.",
    ),
    (
        re.compile(
            r"wrote too (much|many)|too many (bytes|documents) written|too many writes"
            r"|scheduled too many|arguments too large",
            re.IGNORECASE,
        ),
        "This would write more data than Convex lets one call write, so it cannot be done as"
        " it is. The server log has the details.",
    ),
    (
        re.compile(r"too large|maximum size|array length|maximum length|too long", re.IGNORECASE),
        "This is too large for one Convex record (at most 1 MiB, arrays of at most 8192"
        " items). Send it in smaller parts.",
    ),
)


def failed(url: str, path: str, raw: str) -> OrchestratorError:
    """Our error for a function that failed with ``raw``, which only the log sees.

    A raw message can hold the call's arguments (a development deployment's
    argument-validation errors do, the server secret among them), so it never
    reaches a user.
    """
    log.warning("Convex function %s failed on %s: %s", path, url, raw)
    for pattern, sentence in _LIMITS:
        if pattern.search(raw):
            return BackendLimitExceeded(sentence)
    return BackendUnavailable(
        f"The Convex deployment at {url} could not run {path}. Deploy the functions of this"
        " orchestrator version with: npx convex deploy. The server log has the details."
    )

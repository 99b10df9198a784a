"""The agent runtime on the real ``opencode`` CLI (``opencode serve`` over HTTP + SSE).

Facts this adapter relies on were measured against opencode-ai 1.18.33 (see
``tools/opencode/package.json``): the server prints ``opencode server listening
on http://127.0.0.1:PORT``; ``GET /event`` streams ``data: {"type", "properties"}``
lines; a turn ends with ``session.idle`` after ``session.status`` ``busy``, and
failed turns first send ``session.error``.
"""

from orchestrator.adapters.opencode._runtime import (
    OpencodeRuntime,
    OpencodeSession,
    ProcessPolicy,
    open_opencode_runtime,
)
from orchestrator.adapters.opencode._server import (
    OPENCODE_VERSION,
    OpencodeServer,
    SseParser,
    find_opencode,
)

__all__ = [
    "OPENCODE_VERSION",
    "OpencodeRuntime",
    "OpencodeServer",
    "OpencodeSession",
    "ProcessPolicy",
    "SseParser",
    "find_opencode",
    "open_opencode_runtime",
]

"""Logging, configured once for every command: one line per record on stderr."""

from __future__ import annotations

import logging
import sys

from orchestrator.domain.errors import InvalidInput

LEVELS = ("debug", "info", "warning", "error")
HANDLER = "orchestrator"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Show log records at ``level`` and above on stderr; libraries stay at warning."""
    name = level.strip().lower()
    if name not in LEVELS:
        raise InvalidInput(f"--log-level must be one of {', '.join(LEVELS)}, not {level!r}.")
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    # Replace only our own handler: configuring twice (tests, re-entry) never doubles lines.
    root.handlers[:] = [h for h in root.handlers if h.get_name() != HANDLER] + [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("orchestrator").setLevel(name.upper())

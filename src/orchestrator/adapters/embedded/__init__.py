"""The embedded backend: everything on one SQLite file, for a single host."""

from orchestrator.adapters.embedded.backend import SQLiteBackend, open_backend

__all__ = ["SQLiteBackend", "open_backend"]

"""The machine's folders under its root: listing, creating and cloning into them, confined."""

from orchestrator.adapters.filesystem.workspace import LocalWorkspace

__all__ = ["LocalWorkspace"]

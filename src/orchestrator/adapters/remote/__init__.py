"""The client side of ``orchestrator serve``: the machine and chat ports over HTTP and WebSocket."""

from orchestrator.adapters.remote.client import RemoteMachineBackend

__all__ = ["RemoteMachineBackend"]

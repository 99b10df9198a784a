"""The client side of ``orchestrator serve``: a ``MachineBackend`` over HTTP and WebSocket."""

from orchestrator.adapters.remote.client import RemoteMachineBackend

__all__ = ["RemoteMachineBackend"]

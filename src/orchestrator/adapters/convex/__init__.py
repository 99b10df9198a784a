"""The Convex backend: the same ``Backend`` port, on a Convex deployment.

The rules live in the TypeScript functions of ``backend_convex/convex``; this
package calls them through the official ``convex`` Python client (WebSocket,
live subscriptions) or Convex's HTTP API (polled subscriptions).
"""

from orchestrator.adapters.convex._transport import ClientTransport, HttpTransport, Transport
from orchestrator.adapters.convex.backend import ConvexBackend, open_convex_backend

__all__ = ["ClientTransport", "ConvexBackend", "HttpTransport", "Transport", "open_convex_backend"]

"""Web Push: the server's VAPID keys and sending encrypted messages to push services."""

from orchestrator.adapters.push._vapid import VapidKeys, load_vapid_keys
from orchestrator.adapters.push._webpush import WebPushSender

__all__ = ["VapidKeys", "WebPushSender", "load_vapid_keys"]

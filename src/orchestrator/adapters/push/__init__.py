"""Web Push: the server's VAPID keys and sending encrypted messages to push services."""

from orchestrator.adapters.push._vapid import VapidKeys, load_vapid_keys
from orchestrator.adapters.push._webpush import WebPushSender, is_browser_key

__all__ = ["VapidKeys", "WebPushSender", "is_browser_key", "load_vapid_keys"]

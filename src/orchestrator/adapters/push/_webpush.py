"""Sending one encrypted message to a push service with pywebpush (RFC 8030/8291/8292)."""

from __future__ import annotations

import base64
import binascii
from typing import Final
from urllib.parse import urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPushException, webpush_async

from orchestrator.adapters.push._vapid import VapidKeys
from orchestrator.domain.notifications import PushReply, PushSubscription

#: How long a push service keeps a message for a device that is offline (seconds).
TTL: Final = 12 * 60 * 60


def is_browser_key(p256dh: str) -> bool:
    """Whether ``p256dh`` (base64url) is a point on P-256, so messages can be encrypted for it."""
    try:
        raw = base64.urlsafe_b64decode(p256dh + "=" * (-len(p256dh) % 4))
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except (binascii.Error, ValueError):
        return False
    return True


class WebPushSender:
    """Encrypts a payload for one subscription and posts it; returns what the service said."""

    def __init__(self, keys: VapidKeys, contact: str, *, timeout: float = 10.0) -> None:
        self._keys = keys
        self._contact = contact
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, subscription: PushSubscription, payload: bytes) -> PushReply:
        """Post ``payload`` (encrypted with aes128gcm) with a VAPID signature for its origin."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(self._timeout))
        origin = urlsplit(subscription.endpoint)
        claims: dict[str, str | int] = {
            "sub": self._contact,
            "aud": f"{origin.scheme}://{origin.netloc}",
        }
        info: dict[str, str | bytes | dict[str, str | bytes]] = {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
        try:
            response = await webpush_async(
                info,
                data=payload.decode(),
                vapid_private_key=self._keys.vapid,
                vapid_claims=claims,
                ttl=TTL,
                timeout=self._timeout,
                headers={"Urgency": "high"},
                aiohttp_session=self._session,
            )
        except WebPushException as exc:
            response = exc.response
            if response is None:
                return PushReply(status=None, retry_after=None)
            return PushReply(
                status=getattr(response, "status", None) or getattr(response, "status_code", None),
                retry_after=response.headers.get("Retry-After"),
            )
        except (aiohttp.ClientError, TimeoutError, OSError):
            return PushReply(status=None, retry_after=None)
        except ValueError as exc:  # keys the message cannot be encrypted for
            return PushReply(status=None, error=str(exc) or "The subscription's keys are unusable.")
        assert isinstance(response, aiohttp.ClientResponse)
        return PushReply(status=response.status, retry_after=None)

    async def close(self) -> None:
        """Close the HTTP connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None

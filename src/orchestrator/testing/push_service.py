"""A stand-in push service on loopback that checks what a real one checks.

No real push service (FCM, Mozilla autopush, Apple) can be reached from the
test machines, so this one plays both the browser and the push service: it
makes subscriptions with fresh P-256 keys like ``pushManager.subscribe`` does,
and for every message it receives it

* verifies the VAPID ``Authorization: vapid t=<JWT>, k=<key>`` header (RFC 8292):
  the key is the one the subscription was made for, the ES256 signature holds,
  ``aud`` is the endpoint's origin, ``exp`` lies within the next 24 hours and
  ``sub`` is a ``mailto:`` or ``https:`` contact (403 otherwise);
* decrypts the ``aes128gcm`` body with the subscription's private key and auth
  secret (RFC 8291 and RFC 8188), written here from the RFCs with
  ``cryptography``'s primitives, independent of the sender's library (400 if
  it does not decrypt);
* answers 201 and keeps the decrypted message in :attr:`received`.

Tell it to answer 404, 410, 429 or 5xx instead with :meth:`answer_next`.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import attrs
from aiohttp import web
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class PushRefused(Exception):
    """Why the stand-in refused a message (the status it answers and the reason)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def b64url_decode(value: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url(raw: bytes) -> str:
    """Encode base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _hkdf(salt: bytes, info: bytes, length: int, secret: bytes) -> bytes:
    return HKDF(hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def decrypt_aes128gcm(
    body: bytes, private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes
) -> bytes:
    """RFC 8291 message decryption of a single-record RFC 8188 ``aes128gcm`` body."""
    if len(body) < 21:
        raise PushRefused(400, "The body is shorter than the aes128gcm header.")
    salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender_key, ciphertext = body[21 : 21 + id_length], body[21 + id_length :]
    if id_length != 65 or len(ciphertext) > record_size:
        raise PushRefused(400, "The aes128gcm header is not a single Web Push record.")
    try:
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_key)
    except ValueError as exc:
        raise PushRefused(400, "The sender's key is not a P-256 point.") from exc
    shared = private_key.exchange(ec.ECDH(), sender)
    key_info = b"WebPush: info\x00" + _point(private_key.public_key()) + sender_key
    ikm = _hkdf(auth_secret, key_info, 32, shared)
    cek = _hkdf(salt, b"Content-Encoding: aes128gcm\x00", 16, ikm)
    nonce = _hkdf(salt, b"Content-Encoding: nonce\x00", 12, ikm)
    try:
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    except InvalidTag as exc:
        raise PushRefused(400, "The body does not decrypt with the subscription's keys.") from exc
    plain = padded.rstrip(b"\x00")
    if not plain.endswith(b"\x02"):
        raise PushRefused(400, "The last record lacks its 0x02 delimiter.")
    return plain[:-1]


def verify_vapid(header: str, endpoint: str, expected_key: str, now: float) -> dict[str, Any]:
    """The claims of a valid RFC 8292 ``vapid`` Authorization header, else PushRefused(403)."""
    scheme, _, params = header.partition(" ")
    if scheme.lower() != "vapid":
        raise PushRefused(403, "The Authorization scheme is not 'vapid'.")
    fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
    token, key = fields.get("t", ""), fields.get("k", "")
    if b64url_decode(key) != b64url_decode(expected_key):
        raise PushRefused(403, "The VAPID key is not the one the subscription was made with.")
    try:
        signing_input, signature_b64 = token.rsplit(".", 1)
        header_b64, claims_b64 = signing_input.split(".")
        jwt_header = json.loads(b64url_decode(header_b64))
        claims: dict[str, Any] = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
    except ValueError as exc:
        raise PushRefused(403, "The VAPID token is not a JWT.") from exc
    if jwt_header.get("alg") != "ES256" or len(signature) != 64:
        raise PushRefused(403, "The VAPID token is not signed with ES256.")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise PushRefused(403, "The VAPID signature does not verify.") from exc
    origin = urlsplit(endpoint)
    if claims.get("aud") != f"{origin.scheme}://{origin.netloc}":
        raise PushRefused(403, "The VAPID 'aud' claim is not the push service's origin.")
    expires = claims.get("exp")
    if not isinstance(expires, int) or not now < expires <= now + 24 * 3600:
        raise PushRefused(403, "The VAPID 'exp' claim is not within the next 24 hours.")
    contact = claims.get("sub")
    if not isinstance(contact, str) or not contact.startswith(("mailto:", "https:")):
        raise PushRefused(403, "The VAPID 'sub' claim is not a mailto: or https: contact.")
    return claims


@attrs.frozen
class Received:
    """A message the stand-in accepted."""

    subscription: str
    payload: dict[str, Any]
    claims: dict[str, Any]
    ttl: int
    urgency: str | None


@attrs.define
class _Browser:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str


@attrs.define
class StandInPushService:
    """Start with :meth:`start`, stop with :meth:`stop`; see the module docstring."""

    received: list[Received] = attrs.Factory(list)
    #: Messages refused because they were not valid, with the reason.
    refused: list[str] = attrs.Factory(list)
    #: Statuses answered on request (429, 5xx, 404, 410), in order.
    answered: list[int] = attrs.Factory(list)
    _browsers: dict[str, _Browser] = attrs.Factory(dict)
    _next: deque[tuple[int, str | None]] = attrs.Factory(deque)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def start(self) -> StandInPushService:
        """Listen on 127.0.0.1 on a free port."""
        app = web.Application()
        app.router.add_post("/push/{subscription}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """A new subscription, as a browser's ``PushSubscription.toJSON()`` gives it."""
        name = secrets.token_urlsafe(16)
        browser = _Browser(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16), "")
        browser.application_server_key = application_server_key
        self._browsers[name] = browser
        return {
            "endpoint": f"{self.base_url}/push/{name}",
            "expirationTime": None,
            "keys": {
                "p256dh": b64url(_point(browser.private_key.public_key())),
                "auth": b64url(browser.auth),
            },
        }

    def unsubscribe(self, endpoint: str) -> None:
        """Forget a subscription, as a browser does; its endpoint then answers 410."""
        self._browsers.pop(endpoint.rsplit("/", 1)[-1], None)

    def answer_next(self, *statuses: int, retry_after: str | None = None) -> None:
        """Answer the next messages with these statuses instead of accepting them."""
        self._next.extend((status, retry_after) for status in statuses)

    async def _push(self, request: web.Request) -> web.Response:
        name = request.match_info["subscription"]
        if self._next:
            status, retry_after = self._next.popleft()
            self.answered.append(status)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.Response(status=status, headers=headers)
        browser = self._browsers.get(name)
        if browser is None:
            self.answered.append(410)
            return web.Response(status=410, text="This subscription has expired.")
        body = await request.read()
        try:
            received = self._check(request, name, browser, body)
        except PushRefused as exc:
            self.refused.append(exc.reason)
            return web.Response(status=exc.status, text=exc.reason)
        self.received.append(received)
        return web.Response(status=201, headers={"Location": f"/message/{len(self.received)}"})

    def _check(self, request: web.Request, name: str, browser: _Browser, body: bytes) -> Received:
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            raise PushRefused(400, "The TTL header is required (RFC 8030).")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            raise PushRefused(415, "The body must be encrypted with aes128gcm (RFC 8291).")
        claims = verify_vapid(
            request.headers.get("Authorization", ""),
            f"{self.base_url}/push/{name}",
            browser.application_server_key,
            time.time(),
        )
        plain = decrypt_aes128gcm(body, browser.private_key, browser.auth)
        try:
            payload = json.loads(plain)
        except ValueError as exc:
            raise PushRefused(400, "The decrypted message is not JSON.") from exc
        return Received(name, payload, claims, int(ttl), request.headers.get("Urgency"))

"""The stand-in push service is honest: it refuses what a real push service refuses."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import http_ece
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid

from orchestrator.adapters.push import load_vapid_keys
from orchestrator.testing.push_service import (
    PushRefused,
    b64url,
    decrypt_aes128gcm,
    verify_vapid,
)

ENDPOINT = "https://push.example/send/abc"


def _key_and_header(tmp_path: Path, claims: dict[str, object]) -> tuple[str, str]:
    keys = load_vapid_keys(tmp_path)
    vapid: Vapid = keys.vapid
    vapid.conf = {"no-strict": True}
    return keys.application_server_key, vapid.sign(claims)["Authorization"]


def _claims(**changes: object) -> dict[str, object]:
    return {
        "aud": "https://push.example",
        "exp": int(time.time()) + 3600,
        "sub": "mailto:a@b.c",
        **changes,
    }


def test_a_valid_vapid_header_gives_its_claims(tmp_path: Path) -> None:
    """A token signed by the subscription's key with the right claims passes."""
    key, header = _key_and_header(tmp_path, _claims())
    assert verify_vapid(header, ENDPOINT, key, time.time())["sub"] == "mailto:a@b.c"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (_claims(aud="https://elsewhere.example"), "'aud'"),
        (_claims(exp=int(time.time()) - 10), "'exp'"),
        (_claims(exp=int(time.time()) + 3 * 24 * 3600), "'exp'"),
        (_claims(sub="admin"), "'sub'"),
    ],
)
def test_wrong_claims_are_refused(tmp_path: Path, claims: dict[str, object], reason: str) -> None:
    """aud must be the push service's origin, exp within 24 h, sub a contact URL."""
    key, header = _key_and_header(tmp_path, claims)
    with pytest.raises(PushRefused, match=reason) as refused:
        verify_vapid(header, ENDPOINT, key, time.time())
    assert refused.value.status == 403


def test_a_tampered_signature_is_refused(tmp_path: Path) -> None:
    """Changing the claims after signing breaks the ES256 signature."""
    key, header = _key_and_header(tmp_path, _claims())
    token = header.split("t=", 1)[1].split(",", 1)[0]
    body = token.split(".")[1]
    forged_claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    forged_claims["sub"] = "mailto:mallory@evil.example"
    forged = b64url(json.dumps(forged_claims).encode())
    with pytest.raises(PushRefused, match="signature"):
        verify_vapid(header.replace(body, forged), ENDPOINT, key, time.time())


def test_decryption_matches_the_reference_library_and_refuses_other_keys() -> None:
    """A body http_ece encrypts for the browser decrypts; for another browser it does not."""
    browser = ec.generate_private_key(ec.SECP256R1())
    auth = b"0123456789abcdef"
    browser_public = browser.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    body = http_ece.encrypt(
        b'{"title":"hi"}',
        private_key=ec.generate_private_key(ec.SECP256R1()),
        dh=browser_public,
        auth_secret=auth,
        version="aes128gcm",
    )
    assert decrypt_aes128gcm(body, browser, auth) == b'{"title":"hi"}'
    with pytest.raises(PushRefused, match="does not decrypt"):
        decrypt_aes128gcm(body, ec.generate_private_key(ec.SECP256R1()), auth)
    with pytest.raises(PushRefused):
        decrypt_aes128gcm(body[:10], browser, auth)

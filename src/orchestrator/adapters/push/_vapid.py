"""The server's VAPID key pair (RFC 8292), made on first start and kept in the data directory."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Final

import attrs
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid, VapidException

from orchestrator.domain.errors import OrchestratorError

KEY_FILE: Final = "vapid_private_key.pem"


@attrs.frozen
class VapidKeys:
    """The signing key, and the public key browsers subscribe with (``applicationServerKey``)."""

    vapid: Vapid = attrs.field(repr=False)
    path: Path

    @property
    def application_server_key(self) -> str:
        """The uncompressed P-256 public key, base64url without padding."""
        raw = self.vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def load_vapid_keys(data_dir: Path) -> VapidKeys:
    """Read the key from ``data_dir``, or make one and save it readable by its owner only."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        made = Vapid()
        made.generate_keys()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another server process made it first: read theirs
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(made.private_pem())
    try:
        return VapidKeys(Vapid.from_file(str(path)), path)
    except VapidException as exc:
        raise OrchestratorError(
            f"The push key {path} cannot be read. Delete it to make a new one"
            " (browsers will then need to enable notifications again)."
        ) from exc

"""Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.

Secrets are `whsec_<base64 key>`. One signature per active secret, space-separated, so receivers
can switch secrets without losing a message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret


class SecretError(ValueError):
    """A signing secret that is not `whsec_<base64>` of at least 16 bytes."""


def secret_key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise SecretError(f"a signing secret must start with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as e:
        raise SecretError("a signing secret must be base64 after 'whsec_'") from e
    if len(key) < 16:
        raise SecretError("a signing secret must hold at least 16 bytes of key")
    return key


def sign(*, secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for this message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def redact(secret: str) -> str:
    """A secret as it may be shown: the prefix and the last 4 characters."""
    return f"{SECRET_PREFIX}...{secret[-4:]}"

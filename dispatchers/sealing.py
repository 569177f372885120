"""Webhook signing secrets sealed at rest (AES-256-GCM), so a database dump or backup does not give
them away.

`HERALD_SECRETS_KEYS` is a keyring: `id:base64key[,id:base64key...]`, each key 32 random bytes (for
instance `openssl rand -base64 32`). The first key seals; every key listed opens. A sealed secret is
stored as `sealed:v1:<key id>:<base64 nonce+ciphertext>`, bound to its subscription's id (a sealed
value copied to another subscription does not open). Without a keyring, secrets are stored as given
(the local demo); `python -m dispatchers secrets reseal` seals what is stored under the first key,
which is also how a key is retired: put the new key first, keep the old one listed, reseal, then
drop it.

A secret that does not open is told, not raised, where one subscription must not stop the others
(`Keyring.try_open`, `Keyring.open_subscription` give an `Unopened`): a running dispatcher whose
keyring lacks the key a `secrets reseal` moved a subscription to holds that subscription's
deliveries (`dispatchers.unopened`), and commands that show no secret still work.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "sealed:v1:"
SETTING = "HERALD_SECRETS_KEYS"
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class SealError(ValueError):
    """A keyring that cannot be used, or a stored secret it cannot open. Never holds a secret."""


@dataclass(frozen=True)
class Unopened:
    """A stored value the keyring cannot open, and why; never holds the value."""

    key_id: str
    """The key it is sealed with."""
    key_held: bool
    """False: the keyring does not hold that key (the usual case: a reseal to a newer key). True:
    it holds it, and the value does not open with it (altered, or copied from another
    subscription)."""
    reason: str
    """In words, naming the subscription, the key and the setting."""


@dataclass(frozen=True)
class Opened:
    """A subscription's signing secrets and header values, opened."""

    secrets: tuple[str, ...]
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...] = ()
    """(id, 32-byte key); the first seals."""

    @classmethod
    def parse(cls, text: str | None) -> Keyring:
        if not text or not text.strip():
            return cls()
        keys: list[tuple[str, bytes]] = []
        for n, part in enumerate(text.split(","), start=1):
            key_id, sep, encoded = part.strip().partition(":")
            if not sep or not _KEY_ID.match(key_id):
                raise SealError(
                    f"{SETTING}: entry {n} must be id:base64key, the id of letters, digits, '.',"
                    " '_' or '-'"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except binascii.Error:
                raise SealError(f"{SETTING}: key {key_id!r} is not base64") from None
            if len(key) != 32:
                raise SealError(f"{SETTING}: key {key_id!r} must be 32 bytes, not {len(key)}")
            if any(key_id == known for known, _ in keys):
                raise SealError(f"{SETTING}: key id {key_id!r} is listed twice")
            keys.append((key_id, key))
        return cls(tuple(keys))

    @property
    def sealing_key(self) -> str | None:
        """The id of the key new secrets are sealed with; None: stored as given."""
        return self.keys[0][0] if self.keys else None

    def seal(self, secret: str, *, subscription: uuid.UUID) -> str:
        if not self.keys:
            return secret
        key_id, key = self.keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, secret.encode(), _bound_to(subscription))
        return f"{PREFIX}{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, *, subscription: uuid.UUID) -> str:
        """The value as given; SealError if it does not open."""
        opened = self.try_open(stored, subscription=subscription)
        if isinstance(opened, Unopened):
            raise SealError(opened.reason)
        return opened

    def try_open(self, stored: str, *, subscription: uuid.UUID) -> str | Unopened:
        """The value as given, or why it does not open."""
        if not stored.startswith(PREFIX):
            return stored
        key_id, _, payload = stored[len(PREFIX) :].partition(":")
        key = dict(self.keys).get(key_id)
        if key is None:
            return Unopened(
                key_id,
                key_held=False,
                reason=f"a secret of subscription {subscription} is sealed with key {key_id!r},"
                f" which {SETTING} does not hold",
            )
        try:
            raw = base64.b64decode(payload, validate=True)
            opened = AESGCM(key).decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _bound_to(subscription)
            )
            return opened.decode()
        except (binascii.Error, InvalidTag, ValueError):
            return Unopened(
                key_id,
                key_held=True,
                reason=f"a secret of subscription {subscription} does not open with key"
                f" {key_id!r} (altered, or copied from another subscription)",
            )

    def open_subscription(
        self, subscription: uuid.UUID, *, secrets: Sequence[str], headers: Mapping[str, str]
    ) -> Opened | Unopened:
        """All of a subscription's stored secrets and header values opened, or why the first that
        does not open does not: a webhook is signed with every secret and carries every header,
        so one that does not open holds the whole subscription."""
        opened_secrets: list[str] = []
        for stored in secrets:
            secret = self.try_open(stored, subscription=subscription)
            if isinstance(secret, Unopened):
                return secret
            opened_secrets.append(secret)
        opened_headers: list[tuple[str, str]] = []
        for name, stored in headers.items():
            value = self.try_open(stored, subscription=subscription)
            if isinstance(value, Unopened):
                return value
            opened_headers.append((name, value))
        return Opened(tuple(opened_secrets), tuple(opened_headers))

    def is_current(self, stored: str) -> bool:
        """Sealed with the sealing key (or, without keys, stored as given)."""
        if not self.keys:
            return not stored.startswith(PREFIX)
        return stored.startswith(f"{PREFIX}{self.keys[0][0]}:")


def _bound_to(subscription: uuid.UUID) -> bytes:
    return b"herald-subscription:" + subscription.bytes

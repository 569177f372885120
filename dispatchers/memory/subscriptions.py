"""Subscriptions in memory (`dispatchers.postgres.subscriptions`' twin): sealed as Postgres holds them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from dispatchers.matching import SubscriptionFilter
from dispatchers.memory.tables import Sub, Tables
from dispatchers.model import Subscription
from dispatchers.sealing import PREFIX as SEALED
from dispatchers.sealing import Unopened


class MemorySubscriptions:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    @property
    def sealing_key(self) -> str | None:
        return self._t.keyring.sealing_key

    def create(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        filter: SubscriptionFilter,
        ordered: bool,
        rate_limit_per_s: float | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> uuid.UUID:
        sub_id = uuid.uuid4()
        with self._t.lock:
            at = self._t.clock()
            self._t.subscriptions[sub_id] = Sub(
                id=sub_id,
                url=url,
                secrets=[self._t.keyring.seal(s, subscription=sub_id) for s in secrets],
                filter=filter,
                ordered=ordered,
                created_at=at,
                updated_at=at,
                rate_limit_per_s=rate_limit_per_s,
                headers=self._t.sealed_headers(headers, sub_id),
            )
        return sub_id

    def all(self, *, enabled_only: bool = False) -> list[Subscription]:
        with self._t.lock:
            subs = sorted(self._t.subscriptions.values(), key=lambda s: (s.created_at, s.id))
            return [self._t.subscription(s) for s in subs if s.enabled or not enabled_only]

    def get(self, subscription_id: uuid.UUID) -> Subscription | None:
        with self._t.lock:
            sub = self._t.subscriptions.get(subscription_id)
            return None if sub is None else self._t.subscription(sub)

    def update(
        self,
        subscription_id: uuid.UUID,
        *,
        now: datetime,
        url: str | None = None,
        event_types: Sequence[str] | None = None,
        clusters: Sequence[str] | None = None,
        namespaces: Sequence[str] | None = None,
        names: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        subjects: Sequence[str] | None = None,
        ordered: bool | None = None,
        rate_limit_per_s: float | None = None,
        unlimited: bool = False,
        headers: Sequence[tuple[str, str]] | None = None,
    ) -> bool:
        with self._t.lock:
            sub = self._t.subscriptions.get(subscription_id)
            if sub is None:
                return False
            if url is not None and url != sub.url:
                sub.url, sub.failing_since = url, None  # a new endpoint
            changed = {
                "event_types": event_types,
                "clusters": clusters,
                "namespaces": namespaces,
                "names": names,
                "sources": sources,
                "subjects": subjects,
            }
            sub.filter = replace(
                sub.filter, **{k: tuple(v) for k, v in changed.items() if v is not None}
            )
            sub.ordered = sub.ordered if ordered is None else ordered
            if unlimited or rate_limit_per_s is not None:
                sub.rate_limit_per_s = None if unlimited else rate_limit_per_s
                sub.bucket = None
            if headers is not None:
                sub.headers = self._t.sealed_headers(headers, subscription_id)
            sub.updated_at = now
            return True

    def set_enabled(
        self, subscription_id: uuid.UUID, *, enabled: bool, reason: str | None, now: datetime
    ) -> bool:
        with self._t.lock:
            sub = self._t.subscriptions.get(subscription_id)
            if sub is None:
                return False
            sub.enabled, sub.updated_at = enabled, now
            sub.disabled_reason = None if enabled else reason
            sub.disabled_at = None if enabled else now
            sub.failing_since = None if enabled else sub.failing_since
            return True

    def rotate_secret(
        self, subscription_id: uuid.UUID, secret: str, *, now: datetime, grace: timedelta
    ) -> bool:
        with self._t.lock:
            sub = self._t.subscriptions.get(subscription_id)
            if sub is None:
                return False
            sub.retired_secrets = sub.secrets
            sub.secrets = [self._t.keyring.seal(secret, subscription=subscription_id)]
            sub.retired_until, sub.updated_at = now + grace, now
            return True

    def check_secrets(self) -> int:
        unsealed = 0
        with self._t.lock:
            for sub in self._t.subscriptions.values():
                for stored in (*sub.secrets, *sub.retired_secrets, *sub.headers.values()):
                    self._t.keyring.open(stored, subscription=sub.id)
                    unsealed += not stored.startswith(SEALED)
        return unsealed

    def unopened(self, *, now: datetime) -> dict[uuid.UUID, Unopened]:
        with self._t.lock:
            opened = {
                s.id: self._t.opened(s, s.signing(now)) for s in self._t.subscriptions.values()
            }
        return {sub: o for sub, o in opened.items() if isinstance(o, Unopened)}

    def reseal(self, *, only: uuid.UUID | None = None) -> int:
        keyring = self._t.keyring

        def resealed(stored: list[str], sub: uuid.UUID) -> list[str] | None:
            if all(keyring.is_current(s) for s in stored):
                return None
            return [
                keyring.seal(keyring.open(s, subscription=sub), subscription=sub) for s in stored
            ]

        with self._t.lock:
            # Worked out in full before anything changes: SealError leaves everything as it was.
            changes: list[
                tuple[Sub, list[str] | None, list[str] | None, dict[str, str] | None]
            ] = []
            for sub in sorted(self._t.subscriptions.values(), key=lambda s: s.id):
                if only is not None and sub.id != only:
                    continue
                headers = None
                if not all(keyring.is_current(v) for v in sub.headers.values()):
                    opened = [
                        (n, keyring.open(v, subscription=sub.id)) for n, v in sub.headers.items()
                    ]
                    headers = self._t.sealed_headers(opened, sub.id)
                secrets, retired = (
                    resealed(sub.secrets, sub.id),
                    resealed(sub.retired_secrets, sub.id),
                )
                if secrets is not None or retired is not None or headers is not None:
                    changes.append((sub, secrets, retired, headers))
            for sub, secrets, retired, headers in changes:
                sub.secrets = sub.secrets if secrets is None else secrets
                sub.retired_secrets = sub.retired_secrets if retired is None else retired
                sub.headers = sub.headers if headers is None else headers
        return len(changes)

"""The subscriptions a running dispatcher cannot open the secrets of, whose deliveries therefore
wait. Pure (thread-safe: the sending workers and the housekeeping thread of one dispatcher share it).

A dispatcher refuses to start while a stored secret does not open (`HERALD_SECRETS_KEYS` lacks its
key), but one already running meets it when `secrets reseal` moves secrets to a key it was started
without. Stopping, or failing the deliveries, would make one subscription's secret stop every
subscription or lose its events; so that subscription is held instead, as an open circuit breaker
holds one: its deliveries are not claimed (no attempt is made or logged, no try is spent, its
failure streak does not move), everything else goes on, and a dispatcher started with the key
sends them. The shell logs each subscription once when it starts waiting and once when it opens
again, and shows the count by key (a metric, the readiness details).

Two sources feed it: a claim that finds a subscription's secrets do not open (`found`: it takes
none of its deliveries), and a scan of every subscription every few seconds (`rescanned`), which
also sees the ones that open again (resealed back, or given a secret sealed with a key held). A
scan that began reading before a claim found one does not release it (`seen`, `since`).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from dispatchers.sealing import SETTING, Unopened


@dataclass(frozen=True)
class Changes:
    waiting: dict[uuid.UUID, Unopened]
    """Subscriptions that started waiting, with why (to log once)."""
    reopened: list[uuid.UUID]
    """Subscriptions whose secrets open again (to log once): their deliveries go out."""


class UnopenedSubscriptions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[uuid.UUID, tuple[Unopened, int]] = {}
        self._seen = 0

    @property
    def seen(self) -> int:
        """A mark to pass to `rescanned` as `since`, taken before the scan reads."""
        with self._lock:
            return self._seen

    def found(self, found: Mapping[uuid.UUID, Unopened]) -> dict[uuid.UUID, Unopened]:
        """Hold these (a claim found them); return those not held before."""
        new: dict[uuid.UUID, Unopened] = {}
        with self._lock:
            for subscription, why in found.items():
                if subscription not in self._waiting:
                    self._seen += 1
                    self._waiting[subscription] = (why, self._seen)
                    new[subscription] = why
        return new

    def rescanned(self, scan: Mapping[uuid.UUID, Unopened], *, since: int) -> Changes:
        """Hold exactly the subscriptions of a scan of them all (begun at `since`), except those a
        claim found after the scan began, which are kept."""
        with self._lock:
            reopened = [
                subscription
                for subscription, (_, seen) in self._waiting.items()
                if subscription not in scan and seen <= since
            ]
            for subscription in reopened:
                del self._waiting[subscription]
            waiting = {s: why for s, why in scan.items() if s not in self._waiting}
            for subscription, why in scan.items():
                seen = self._waiting.get(subscription, (why, since))[1]
                self._waiting[subscription] = (why, seen)
        return Changes(waiting=waiting, reopened=reopened)

    def held(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._waiting)

    def by_key(self) -> dict[str, int]:
        """How many subscriptions wait, by the key their secrets are sealed with."""
        with self._lock:
            return dict(Counter(why.key_id for why, _ in self._waiting.values()))

    def describe(self) -> str:
        """For the readiness details: "ok", or what waits for which keys."""
        with self._lock:
            kinds = Counter((why.key_id, why.key_held) for why, _ in self._waiting.values())
        if not kinds:
            return "ok"
        parts = [
            f"{n} not opening with key {key!r} (altered or copied)"
            if held
            else f"{n} sealed with key {key!r} (not in {SETTING})"
            for (key, held), n in sorted(kinds.items(), key=lambda kn: (-kn[1], kn[0]))
        ]
        return (
            f"deliveries wait for {kinds.total()} subscriptions whose secrets this dispatcher"
            " cannot open: " + ", ".join(parts)
        )

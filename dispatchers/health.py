"""Endpoint health: which subscriptions a batch of attempts recovered, which are failing since when,
and which to disable. Pure; the stores keep `failing_since` and apply the decision.

A success clears a subscription's failure streak; a failure starts one if none is running. A
subscription whose every attempt has failed for `disable_after` is disabled, and so is one whose
endpoint answered 410 Gone (at once). Attempts are judged in the order given (the order they were
made), so a batch ending in a success leaves the subscription healthy.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatchers.outcomes import Verdict

GONE_REASON = "the endpoint answered 410 Gone"


@dataclass(frozen=True)
class Health:
    """One subscription's attempts in a batch, summed up."""

    first_failure: datetime | None = None
    """When the first failure after the batch's last success started; None: the last one
    succeeded (or none failed)."""
    succeeded: bool = False
    """Whether any attempt of the batch succeeded."""
    gone: bool = False
    """Whether an attempt was answered 410 Gone."""

    @property
    def recovered(self) -> bool:
        return self.succeeded and self.first_failure is None

    def failing_since(self, stored: datetime | None) -> datetime | None:
        """The streak after this batch, given the one stored before it."""
        if self.first_failure is None:
            return None if self.succeeded else stored
        return self.first_failure if self.succeeded else (stored or self.first_failure)


def summarise(
    attempts: Sequence[tuple[datetime, Verdict, uuid.UUID | None]],
) -> dict[uuid.UUID, Health]:
    """Per subscription, from (started at, verdict, subscription) in attempt order; attempts of
    no subscription (their delivery was cleaned up meanwhile) count for none."""
    health: dict[uuid.UUID, Health] = {}
    for started_at, verdict, sub in attempts:
        if sub is None:
            continue
        now = health.get(sub, Health())
        if verdict is Verdict.DELIVERED:
            health[sub] = Health(None, succeeded=True, gone=now.gone)
        else:
            health[sub] = Health(
                now.first_failure or started_at,
                succeeded=now.succeeded,
                gone=now.gone or verdict is Verdict.GONE,
            )
    return health


def disable_reason(
    health: Health, failing_since: datetime | None, *, now: datetime, disable_after: timedelta
) -> str | None:
    """Why to disable the subscription, if it is to be: gone, or failing for `disable_after`."""
    if health.gone:
        return GONE_REASON
    if failing_since is not None and failing_since <= now - disable_after:
        return f"every attempt has failed since {failing_since.isoformat(timespec='seconds')}"
    return None


def recovered(health: Mapping[uuid.UUID, Health]) -> list[uuid.UUID]:
    return [sub for sub, h in health.items() if h.recovered]

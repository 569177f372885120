"""The dispatcher's Prometheus metrics, and the observers that feed them."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from dispatchers.breaker import Breakers, State
from dispatchers.http import HttpResult
from dispatchers.intake import RefusalKind
from dispatchers.model import DueDelivery
from dispatchers.outcomes import Outcome, Verdict
from herald_runtime.metrics import replace_series, start_at_zero

DELIVERIES = Counter(
    "herald_dispatcher_deliveries_total",
    "Deliveries that reached an end, by outcome (delivered, failed, gone).",
    ["outcome"],
)
ATTEMPTS = Counter(
    "herald_dispatcher_attempts_total",
    "Delivery attempts, by status class (2xx, 3xx, 4xx, 5xx, or error: no answer).",
    ["status_class"],
)
ATTEMPT_SECONDS = Histogram(
    "herald_dispatcher_attempt_seconds",
    "How long one attempt took, from connecting to the end of the answer.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_SECONDS = Histogram(
    "herald_dispatcher_end_to_end_seconds",
    "From the event's observed time in the cluster to its first successful delivery (from"
    " consumption, retries included; not replays, redeliveries or recoveries).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400),
)
OPEN_DELIVERIES = Gauge(
    "herald_dispatcher_open_deliveries", "Deliveries not finished yet, by status.", ["status"]
)
OLDEST_DUE = Gauge(
    "herald_dispatcher_oldest_due_seconds", "Age of the oldest delivery due and not yet sent."
)
BREAKERS = Gauge(
    "herald_dispatcher_breakers",
    "Subscriptions' circuit breakers in this process, by state.",
    ["state"],
)
DISABLED = Gauge("herald_dispatcher_disabled_subscriptions", "Subscriptions disabled.")
UNOPENED = Gauge(
    "herald_dispatcher_unopened_subscriptions",
    "Subscriptions whose secrets this dispatcher cannot open, by the key they are sealed with"
    " (resealed with a key HERALD_SECRETS_KEYS lacks): their deliveries wait, untried.",
    ["key"],
)
CONSUMER_LAG = Gauge(
    "herald_dispatcher_consumer_lag",
    "Domain-topic records this dispatcher has not read yet, by partition (of those assigned to it).",
    ["partition"],
)


def observe_lag(lags: dict[int, int]) -> None:
    # Partitions move between dispatchers: those that left are no longer reported.
    replace_series(CONSUMER_LAG, {str(partition): lag for partition, lag in lags.items()})


LATE_ATTEMPTS = Counter(
    "herald_dispatcher_late_attempts_total",
    "Attempts recorded after their claim had passed to another worker (the lease ran out first:"
    " the database was unreachable or the process stalled); each may mean a repeated send.",
)
CLEANED = Counter(
    "herald_dispatcher_cleaned_deliveries_total", "Old deliveries deleted by the clean-up."
)
DEAD_LETTERS = Counter(
    "herald_dispatcher_dead_letters_total",
    "Domain-topic records set aside in the dead-letter topic, by kind: undecodable,"
    " undeliverable (an id or key that cannot be sent or stored), refused_by_database.",
    ["kind"],
)


# A 0 sample from the start: the first dead letter or `gone` delivery after a restart alerts.
start_at_zero(DELIVERIES, outcome=[v.value for v in Verdict if v is not Verdict.RETRY])
start_at_zero(ATTEMPTS, status_class=("2xx", "3xx", "4xx", "5xx", "error"))
start_at_zero(DEAD_LETTERS, kind=[kind.value for kind in RefusalKind])


def observe_attempt(
    delivery: DueDelivery, result: HttpResult, outcome: Outcome, *, now: datetime
) -> None:
    code = result.status_code
    ATTEMPTS.labels(f"{code // 100}xx" if code is not None else "error").inc()
    ATTEMPT_SECONDS.observe(result.duration_ms / 1000)
    if outcome.verdict is not Verdict.RETRY:
        DELIVERIES.labels(outcome.verdict.value).inc()
    # From the event in the cluster to its first successful delivery: a replay, a redelivery or a
    # recovery would measure how long ago the event happened, not how fast Herald is.
    if (
        outcome.verdict is Verdict.DELIVERED
        and delivery.first_delivery
        and delivery.event_time is not None
    ):
        END_TO_END_SECONDS.observe(max(0.0, (now - delivery.event_time).total_seconds()))


def observe_state(stats: dict[str, float], breakers: Breakers) -> None:
    OPEN_DELIVERIES.labels("pending").set(stats["pending"])
    OPEN_DELIVERIES.labels("retrying").set(stats["retrying"])
    OLDEST_DUE.set(stats["oldest_due_age_s"])
    DISABLED.set(stats["disabled_subscriptions"])
    states = list(breakers.states().values())
    for state in State:
        BREAKERS.labels(state.value).set(states.count(state))


def observe_unopened(by_key: dict[str, int]) -> None:
    replace_series(UNOPENED, dict(by_key))  # a key no subscription waits for any more goes

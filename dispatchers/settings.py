"""The dispatcher's settings: read once from the environment (prefix `HERALD_`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dispatchers.outcomes import DEFAULT_RETRY_SCHEDULE_S
from herald_contracts import DEAD_LETTER_TOPIC, DOMAIN_TOPIC


class SettingsError(ValueError):
    """A bad setting; the service stops at start and names it."""


@dataclass(frozen=True)
class DispatcherSettings:
    database_url: str
    """HERALD_DATABASE_URL: libpq URL of the PostgreSQL database."""
    kafka_bootstrap: str | None = None
    """HERALD_KAFKA_BOOTSTRAP: host:port[,host:port...]; required to run, not for the CLI."""
    domain_topic: str = DOMAIN_TOPIC
    """HERALD_DOMAIN_TOPIC."""
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    """HERALD_DEAD_LETTER_TOPIC."""
    group_id: str = "herald-dispatchers"
    """HERALD_DISPATCHER_GROUP_ID: the Kafka consumer group."""
    workers: int = 8
    """HERALD_DISPATCHER_WORKERS: sending threads (each with its own HTTP session)."""
    claim_batch: int = 10
    """HERALD_DISPATCHER_CLAIM_BATCH: deliveries a worker leases at a time."""
    lease_s: float = 60.0
    """HERALD_DISPATCHER_LEASE_S: a claimed delivery is claimable again after this long."""
    idle_poll_s: float = 0.2
    """HERALD_DISPATCHER_IDLE_POLL_S: how long an idle worker waits before looking again."""
    connect_timeout_s: float = 5.0
    """HERALD_HTTP_CONNECT_TIMEOUT_S."""
    read_timeout_s: float = 15.0
    """HERALD_HTTP_READ_TIMEOUT_S."""
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    """HERALD_RETRY_SCHEDULE_S: comma-separated delays before each try; its length is the tries."""
    retry_jitter: float = 0.2
    """HERALD_RETRY_JITTER: each delay is scaled by a random factor in [1-j, 1+j]."""
    subscriptions_refresh_s: float = 2.0
    """HERALD_SUBSCRIPTIONS_REFRESH_S: how stale the consumer's view of subscriptions may be."""
    metrics_port: int = 9103
    """HERALD_METRICS_PORT: Prometheus metrics; 0 disables."""
    metrics_host: str = "127.0.0.1"
    """HERALD_METRICS_HOST."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DispatcherSettings:
        def text(name: str) -> str | None:
            return env.get(name, "").strip() or None

        def number(name: str, default: float, *, minimum: float = 0) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError as e:
                raise SettingsError(f"{name} must be a number, not {raw!r}") from e
            if value < minimum:
                raise SettingsError(f"{name} must be at least {minimum}, not {raw!r}")
            return value

        database_url = text("HERALD_DATABASE_URL")
        if database_url is None:
            raise SettingsError("HERALD_DATABASE_URL is required")
        schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
        raw_schedule = text("HERALD_RETRY_SCHEDULE_S")
        if raw_schedule is not None:
            try:
                schedule = tuple(float(part) for part in raw_schedule.split(","))
            except ValueError as e:
                raise SettingsError(
                    f"HERALD_RETRY_SCHEDULE_S must be comma-separated seconds, not {raw_schedule!r}"
                ) from e
            if any(s < 0 for s in schedule):
                raise SettingsError("HERALD_RETRY_SCHEDULE_S must not hold negative delays")
        jitter = number("HERALD_RETRY_JITTER", 0.2)
        if jitter >= 1:
            raise SettingsError(f"HERALD_RETRY_JITTER must be below 1, not {jitter}")
        return cls(
            database_url=database_url,
            kafka_bootstrap=text("HERALD_KAFKA_BOOTSTRAP"),
            domain_topic=text("HERALD_DOMAIN_TOPIC") or DOMAIN_TOPIC,
            dead_letter_topic=text("HERALD_DEAD_LETTER_TOPIC") or DEAD_LETTER_TOPIC,
            group_id=text("HERALD_DISPATCHER_GROUP_ID") or "herald-dispatchers",
            workers=int(number("HERALD_DISPATCHER_WORKERS", 8, minimum=1)),
            claim_batch=int(number("HERALD_DISPATCHER_CLAIM_BATCH", 10, minimum=1)),
            lease_s=number("HERALD_DISPATCHER_LEASE_S", 60.0, minimum=1),
            idle_poll_s=number("HERALD_DISPATCHER_IDLE_POLL_S", 0.2, minimum=0.01),
            connect_timeout_s=number("HERALD_HTTP_CONNECT_TIMEOUT_S", 5.0, minimum=0.1),
            read_timeout_s=number("HERALD_HTTP_READ_TIMEOUT_S", 15.0, minimum=0.1),
            retry_schedule_s=schedule,
            retry_jitter=jitter,
            subscriptions_refresh_s=number("HERALD_SUBSCRIPTIONS_REFRESH_S", 2.0),
            metrics_port=int(number("HERALD_METRICS_PORT", 9103)),
            metrics_host=text("HERALD_METRICS_HOST") or "127.0.0.1",
        )

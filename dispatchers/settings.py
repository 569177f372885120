"""The dispatcher's settings: read once from the environment (prefix `HERALD_`), validated at start.

Read with `herald_runtime.settings.EnvReader`: every bad setting is reported at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg.conninfo import conninfo_to_dict

from dispatchers.addresses import SETTING as ALLOWED_PRIVATE_SETTING
from dispatchers.addresses import AddressPolicy, PolicyError
from dispatchers.outcomes import DEFAULT_RETRY_SCHEDULE_S
from dispatchers.sealing import Keyring, SealError
from herald_contracts import DEAD_LETTER_TOPIC, DOMAIN_TOPIC, RAW_TOPIC
from herald_runtime.logs import LogFormat, LogLevel
from herald_runtime.settings import EnvReader, kafka_bootstrap
from herald_runtime.settings import SettingsError as RuntimeSettingsError


class SettingsError(RuntimeSettingsError):
    """One or more bad settings; the service stops at start and names each."""


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
    extra_topics: tuple[str, ...] = ()
    """HERALD_DISPATCHER_EXTRA_TOPICS: comma-separated further topics of CloudEvents (any
    producer's) the dispatcher reads besides the domain topic, with the same consumer group."""
    group_id: str = "herald-dispatchers"
    """HERALD_DISPATCHER_GROUP_ID: the Kafka consumer group."""
    session_timeout_s: float = 45.0
    """HERALD_DISPATCHER_SESSION_TIMEOUT_S: how soon the group notices a replica that died and
    moves its partitions (librdkafka's `session.timeout.ms`, whose default this is); at least 6
    (the broker's `group.min.session.timeout.ms`)."""
    workers: int = 8
    """HERALD_DISPATCHER_WORKERS: sending threads (each with its own HTTP session)."""
    claim_batch: int = 50
    """HERALD_DISPATCHER_CLAIM_BATCH: deliveries a worker leases at a time."""
    lease_s: float = 60.0
    """HERALD_DISPATCHER_LEASE_S: a claimed delivery is claimable again after this long; at least
    twice HERALD_HTTP_TOTAL_TIMEOUT_S (no attempt starts unless it ends inside its lease)."""
    idle_poll_s: float = 0.2
    """HERALD_DISPATCHER_IDLE_POLL_S: how long an idle worker waits before looking again (the
    deliveries this dispatcher's consumer stores wake it at once; the poll finds those of other
    replicas, and retries falling due)."""
    connect_timeout_s: float = 5.0
    """HERALD_HTTP_CONNECT_TIMEOUT_S."""
    read_timeout_s: float = 15.0
    """HERALD_HTTP_READ_TIMEOUT_S: the longest wait for the next bytes of an answer."""
    total_timeout_s: float = 30.0
    """HERALD_HTTP_TOTAL_TIMEOUT_S: the longest a whole attempt may take, connecting included
    (a receiver trickling its answer is cut off)."""
    retry_schedule_s: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
    """HERALD_RETRY_SCHEDULE_S: comma-separated delays before each try; its length is the tries."""
    retry_jitter: float = 0.2
    """HERALD_RETRY_JITTER: each delay is scaled by a random factor in [1-j, 1+j]."""
    retry_after_min_s: float = 1.0
    """HERALD_RETRY_AFTER_MIN_S: the soonest a `Retry-After` (429, 503) may bring the next try."""
    retry_after_max_s: float = 3600.0
    """HERALD_RETRY_AFTER_MAX_S: the latest a `Retry-After` may push the next try."""
    allow_private_networks: bool = False
    """HERALD_ALLOW_PRIVATE_NETWORKS: deliver to loopback and private addresses too (true/false).
    Off by default; the local demo and the tests turn it on. Metadata and link-local addresses stay
    refused."""
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)
    """HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS: comma-separated CIDRs (`10.42.0.0/16`,
    `127.0.0.1/32`) and host names (`hooks.team.svc.cluster.local`, `*.svc.cluster.local`) whose
    receivers may be on private networks (`dispatchers.addresses` says what no entry opens).
    HERALD_ALLOW_PRIVATE_NETWORKS=true is held here too (every private network); setting both is
    a bad setting."""
    breaker_window_s: float = 300.0
    """HERALD_BREAKER_WINDOW_S: the circuit breaker judges the attempts of this recent period."""
    breaker_min_attempts: int = 10
    """HERALD_BREAKER_MIN_ATTEMPTS: fewer attempts than this in the window never open it."""
    breaker_failure_ratio: float = 0.7
    """HERALD_BREAKER_FAILURE_RATIO: the share of failed attempts that opens it (0 < r <= 1)."""
    breaker_pause_s: float = 30.0
    """HERALD_BREAKER_PAUSE_S: how long an open breaker holds deliveries before one probe; doubles
    after each failed probe, up to HERALD_BREAKER_MAX_PAUSE_S."""
    breaker_max_pause_s: float = 600.0
    """HERALD_BREAKER_MAX_PAUSE_S."""
    max_in_flight_per_subscription: int = 0
    """HERALD_MAX_IN_FLIGHT_PER_SUBSCRIPTION: the most attempts one healthy subscription may have
    running at once in one dispatcher (a new or failing one starts at 1 and earns more with each
    success); 0 means half the workers."""
    suspect_workers: int = 0
    """HERALD_SUSPECT_WORKERS: workers that subscriptions whose last attempt failed may occupy in
    all, so endpoints that hang cannot take the others' workers; 0 means a quarter of them."""
    disable_after_s: float = 5 * 86400.0
    """HERALD_DISABLE_AFTER_S: a subscription whose every attempt has failed for this long is
    disabled, with the reason recorded (5 days)."""
    secrets_keyring: Keyring = field(default_factory=Keyring)
    """HERALD_SECRETS_KEYS: `id:base64key[,...]`, 32-byte keys; the first seals webhook secrets at
    rest, all open them (`dispatchers.sealing`). Unset: secrets are stored as given."""
    secret_grace_s: float = 86400.0
    """HERALD_SECRET_GRACE_S: after `rotate-secret`, the old secrets keep signing this long."""
    retention_delivered_s: float = 30 * 86400.0
    """HERALD_RETENTION_DELIVERED_S: delivered deliveries and their attempts are deleted after this."""
    retention_failed_s: float = 90 * 86400.0
    """HERALD_RETENTION_FAILED_S: failed ones after this."""
    cleanup_interval_s: float = 600.0
    """HERALD_CLEANUP_INTERVAL_S: how often a dispatcher tries to run the clean-up (one at a time)."""
    cleanup_batch: int = 500
    """HERALD_CLEANUP_BATCH: deliveries deleted per transaction, so the clean-up never blocks."""
    subscriptions_refresh_s: float = 2.0
    """HERALD_SUBSCRIPTIONS_REFRESH_S: how stale the consumer's view of subscriptions may be."""
    backoff_base_s: float = 0.5
    """HERALD_BACKOFF_BASE_S: first wait after a dependency (Postgres, Kafka) failed; it doubles
    with each further failure."""
    backoff_max_s: float = 30.0
    """HERALD_BACKOFF_MAX_S: the longest wait between tries of a dependency that is away."""
    metrics_port: int = 9103
    """HERALD_METRICS_PORT: Prometheus metrics; 0 disables."""
    metrics_host: str = "127.0.0.1"
    """HERALD_METRICS_HOST."""
    log_format: LogFormat = LogFormat.JSON
    """HERALD_LOG_FORMAT: json (one object per line) or text (`herald_runtime.logs`)."""
    log_level: LogLevel = LogLevel.INFO
    """HERALD_LOG_LEVEL: debug, info, warning or error."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DispatcherSettings:
        """Read and check every setting; SettingsError listing each bad one."""
        reader = EnvReader(env, error_type=SettingsError)
        text, number, problem = reader.text, reader.number, reader.problem

        database_url = reader.required("HERALD_DATABASE_URL") or ""
        if database_url:
            reader.parsed("HERALD_DATABASE_URL", _check_database_url, None)
        schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE_S
        raw_schedule = text("HERALD_RETRY_SCHEDULE_S")
        if raw_schedule is not None:
            try:
                schedule = tuple(float(part) for part in raw_schedule.split(","))
            except ValueError:
                problem(
                    f"HERALD_RETRY_SCHEDULE_S must be comma-separated seconds, not {raw_schedule!r}",
                    "HERALD_RETRY_SCHEDULE_S",
                )
            if any(s < 0 for s in schedule):
                problem(
                    "HERALD_RETRY_SCHEDULE_S must not hold negative delays",
                    "HERALD_RETRY_SCHEDULE_S",
                )
        jitter = number("HERALD_RETRY_JITTER", 0.2)
        if jitter >= 1:
            problem(f"HERALD_RETRY_JITTER must be below 1, not {jitter}", "HERALD_RETRY_JITTER")
        flag_text = (text("HERALD_ALLOW_PRIVATE_NETWORKS") or "false").lower()
        if flag_text not in ("true", "false", "1", "0", "yes", "no"):
            problem(
                f"HERALD_ALLOW_PRIVATE_NETWORKS must be true or false, not {flag_text!r}",
                "HERALD_ALLOW_PRIVATE_NETWORKS",
            )
        address_policy = AddressPolicy()
        try:
            address_policy = _address_policy(
                env.get(ALLOWED_PRIVATE_SETTING, ""), all_private=flag_text in ("true", "1", "yes")
            )
        except SettingsError as e:
            problem(str(e), ALLOWED_PRIVATE_SETTING)
        ratio = number("HERALD_BREAKER_FAILURE_RATIO", 0.7, minimum=0.01, maximum=1)
        retry_after = (
            number("HERALD_RETRY_AFTER_MIN_S", 1.0),
            number("HERALD_RETRY_AFTER_MAX_S", 3600.0, minimum=1),
        )
        if retry_after[0] > retry_after[1]:
            problem(
                "HERALD_RETRY_AFTER_MIN_S must not exceed HERALD_RETRY_AFTER_MAX_S",
                "HERALD_RETRY_AFTER_MIN_S",
            )
        keyring = Keyring()
        try:
            keyring = Keyring.parse(env.get("HERALD_SECRETS_KEYS"))
        except SealError as e:
            problem(str(e), "HERALD_SECRETS_KEYS")
        lease_s = number("HERALD_DISPATCHER_LEASE_S", 60.0, minimum=1)
        total_timeout_s = number("HERALD_HTTP_TOTAL_TIMEOUT_S", 30.0, minimum=0.1)
        if lease_s < 2 * total_timeout_s:
            problem(
                f"HERALD_DISPATCHER_LEASE_S ({lease_s:g}) must be at least twice"
                f" HERALD_HTTP_TOTAL_TIMEOUT_S ({total_timeout_s:g}): an attempt must end well"
                " inside the lease of its claim, or another worker may send the same delivery",
                "HERALD_DISPATCHER_LEASE_S",
            )
        domain_topic = text("HERALD_DOMAIN_TOPIC") or DOMAIN_TOPIC
        dead_letter_topic = text("HERALD_DEAD_LETTER_TOPIC") or DEAD_LETTER_TOPIC
        extra_topics: tuple[str, ...] = ()
        try:
            extra_topics = _topics(
                "HERALD_DISPATCHER_EXTRA_TOPICS",
                env.get("HERALD_DISPATCHER_EXTRA_TOPICS", ""),
                taken={
                    domain_topic: "HERALD_DOMAIN_TOPIC",
                    dead_letter_topic: "HERALD_DEAD_LETTER_TOPIC",
                    # Kubernetes Events, not CloudEvents: every record would be dead-lettered.
                    text("HERALD_RAW_TOPIC") or RAW_TOPIC: "HERALD_RAW_TOPIC",
                },
            )
        except SettingsError as e:
            problem(str(e), "HERALD_DISPATCHER_EXTRA_TOPICS")
        settings = cls(
            extra_topics=extra_topics,
            retry_after_min_s=retry_after[0],
            retry_after_max_s=retry_after[1],
            allow_private_networks=flag_text in ("true", "1", "yes"),
            address_policy=address_policy,
            breaker_window_s=number("HERALD_BREAKER_WINDOW_S", 300.0, minimum=1),
            breaker_min_attempts=int(number("HERALD_BREAKER_MIN_ATTEMPTS", 10, minimum=1)),
            breaker_failure_ratio=ratio,
            breaker_pause_s=number("HERALD_BREAKER_PAUSE_S", 30.0, minimum=0.1),
            breaker_max_pause_s=number("HERALD_BREAKER_MAX_PAUSE_S", 600.0, minimum=0.1),
            max_in_flight_per_subscription=int(
                number("HERALD_MAX_IN_FLIGHT_PER_SUBSCRIPTION", 0, minimum=0)
            ),
            suspect_workers=int(number("HERALD_SUSPECT_WORKERS", 0, minimum=0)),
            disable_after_s=number("HERALD_DISABLE_AFTER_S", 5 * 86400.0, minimum=1),
            secret_grace_s=number("HERALD_SECRET_GRACE_S", 86400.0),
            retention_delivered_s=number("HERALD_RETENTION_DELIVERED_S", 30 * 86400.0, minimum=1),
            retention_failed_s=number("HERALD_RETENTION_FAILED_S", 90 * 86400.0, minimum=1),
            cleanup_interval_s=number("HERALD_CLEANUP_INTERVAL_S", 600.0, minimum=1),
            cleanup_batch=int(number("HERALD_CLEANUP_BATCH", 500, minimum=1)),
            database_url=database_url,
            kafka_bootstrap=reader.parsed("HERALD_KAFKA_BOOTSTRAP", kafka_bootstrap, None),
            domain_topic=domain_topic,
            dead_letter_topic=dead_letter_topic,
            group_id=text("HERALD_DISPATCHER_GROUP_ID") or "herald-dispatchers",
            session_timeout_s=number("HERALD_DISPATCHER_SESSION_TIMEOUT_S", 45.0, minimum=6),
            workers=int(number("HERALD_DISPATCHER_WORKERS", 8, minimum=1)),
            claim_batch=int(number("HERALD_DISPATCHER_CLAIM_BATCH", 50, minimum=1)),
            lease_s=lease_s,
            total_timeout_s=total_timeout_s,
            secrets_keyring=keyring,
            idle_poll_s=number("HERALD_DISPATCHER_IDLE_POLL_S", 0.2, minimum=0.01),
            connect_timeout_s=number("HERALD_HTTP_CONNECT_TIMEOUT_S", 5.0, minimum=0.1),
            read_timeout_s=number("HERALD_HTTP_READ_TIMEOUT_S", 15.0, minimum=0.1),
            retry_schedule_s=schedule,
            retry_jitter=jitter,
            subscriptions_refresh_s=number("HERALD_SUBSCRIPTIONS_REFRESH_S", 2.0),
            backoff_base_s=number("HERALD_BACKOFF_BASE_S", 0.5, minimum=0.01),
            backoff_max_s=number("HERALD_BACKOFF_MAX_S", 30.0, minimum=0.01),
            metrics_port=int(number("HERALD_METRICS_PORT", 9103, maximum=65535)),
            metrics_host=text("HERALD_METRICS_HOST") or "127.0.0.1",
            log_format=reader.choice("HERALD_LOG_FORMAT", LogFormat, LogFormat.JSON),
            log_level=reader.choice("HERALD_LOG_LEVEL", LogLevel, LogLevel.INFO),
        )
        reader.done()
        return settings


_TOPIC_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _topics(name: str, raw: str, *, taken: Mapping[str, str]) -> tuple[str, ...]:
    """Comma-separated Kafka topic names (Kafka's rule: 1-249 of `[a-zA-Z0-9._-]`, not `.` or
    `..`), each once, none the domain or dead-letter topic (reading the dead letters back would
    set them aside again, for ever)."""
    topics: list[str] = []
    for part in raw.split(","):
        topic = part.strip()
        if not topic and not raw.strip():
            continue
        if not topic or topic in (".", "..") or len(topic) > 249 or set(topic) - _TOPIC_CHARACTERS:
            raise SettingsError(
                f"{name} must be comma-separated Kafka topic names ([a-zA-Z0-9._-], at most 249),"
                f" not {raw!r}"
            )
        if topic in taken:
            raise SettingsError(f"{name}: {topic!r} is already {taken[topic]}'s topic")
        if topic in topics:
            raise SettingsError(f"{name} names {topic!r} twice")
        topics.append(topic)
    return tuple(topics)


def _address_policy(raw: str, *, all_private: bool) -> AddressPolicy:
    try:
        policy = AddressPolicy.parse(raw, all_private=all_private)
    except PolicyError as e:
        raise SettingsError(f"{ALLOWED_PRIVATE_SETTING}: {e}") from e
    if all_private and (policy.networks or policy.hosts):
        raise SettingsError(
            f"{ALLOWED_PRIVATE_SETTING} lists receivers, but HERALD_ALLOW_PRIVATE_NETWORKS=true"
            " already allows every private network: set one of the two"
        )
    return policy


def _check_database_url(url: str) -> None:
    """What can be told wrong without connecting (the service waits for a database that does not
    answer, so a typo must stop it here): the syntax, and the ports."""
    try:
        options = conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise SettingsError(f"HERALD_DATABASE_URL is not a libpq URL: {e}".strip()) from e
    ports = str(options.get("port") or "5432")
    if not all(p.isdigit() for p in ports.split(",")):
        raise SettingsError(f"HERALD_DATABASE_URL: the port must be a number, not {ports!r}")

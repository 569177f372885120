"""Which topics Herald needs, with what partitions, replication and configuration, derived from
the settings. Pure: no Kafka, no env reading beyond the mapping handed to `TopicSettings.from_env`
(read as every service reads its settings: `herald_runtime.settings.EnvReader`).

How a topic as a broker reports it is judged against its spec: `herald_runtime.topics.drift`.

The facts behind the defaults: the raw topic is read again by a processor that was away (three
days cover a weekend); the domain topic is what subscribers and a dispatcher replay read (a week);
dead letters wait for a person (thirty days); the collector's checkpoints must be compacted (only
the latest per key matters, and a deleted one makes a restarted collector relist everything); the
raw topic must take records as large as the collector's producer sends (`max.message.bytes` at
least `HERALD_KAFKA_MESSAGE_MAX_BYTES`, or the broker refuses whole batches). Partition counts only
ever grow by hand: more partitions move keys to other partitions (the processor's state is keyed
by partition), so a topic with fewer partitions than wanted is drift the command reports and does
not fix; more than wanted is fine.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from herald_contracts import DEAD_LETTER_TOPIC, DOMAIN_TOPIC, RAW_TOPIC
from herald_runtime.settings import EnvReader, SettingsError, kafka_topic

ENSURE_COMMAND = "python -m herald_runtime.topics ensure"
"""The command that creates Herald's topics; every service waiting for a topic names it."""

CHECKPOINT_TOPIC = "herald.collector-checkpoints.v1"
PROCESSOR_APP_ID = "herald-processors"
PROCESSOR_TABLES = ("occurrences", "rollouts")
"""The processor's Faust tables (`processors.tables.build_tables`); a test keeps them in step."""
CHANGELOG_SEGMENT_MS = 3_600_000
"""`segment.ms` of the tables' changelogs (`processors.tables`): compaction needs closed segments."""

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""The broker's default `message.max.bytes` (1 MiB and the batch overhead): never set lower."""

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


class TopicSettingsError(SettingsError):
    """A bad setting: the message names it. The command exits 2."""


class Role(enum.StrEnum):
    RAW = "raw"
    DOMAIN = "domain"
    DEAD_LETTERS = "dead-letters"
    CHECKPOINTS = "checkpoints"
    CHANGELOG = "changelog"
    ASSIGNOR = "assignor"


@dataclass(frozen=True)
class Wanted:
    """A topic config value Herald manages: `value` is what is set; with `minimum`, any number at
    least that is as good (a larger `max.message.bytes` is no drift)."""

    value: str
    minimum: int | None = None


@dataclass(frozen=True)
class TopicSpec:
    name: str
    role: Role
    setting: str
    """The variable that names it (or, for Faust's topics, derives the name)."""
    partitions: int
    replication_factor: int | None
    """None: the broker's `default.replication.factor`."""
    config: Mapping[str, Wanted] = field(default_factory=dict)
    why: str = ""


@dataclass(frozen=True)
class TopicSettings:
    """What the topics command reads (env prefix `HERALD_`; the names the services read too)."""

    raw_topic: str = RAW_TOPIC
    """HERALD_RAW_TOPIC."""
    domain_topic: str = DOMAIN_TOPIC
    """HERALD_DOMAIN_TOPIC."""
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    """HERALD_DEAD_LETTER_TOPIC."""
    checkpoint_topic: str = CHECKPOINT_TOPIC
    """HERALD_CHECKPOINT_TOPIC."""
    partitions: int = 6
    """HERALD_TOPIC_PARTITIONS: partitions of the raw and domain topics (the most processors and
    dispatchers that share the work); dead letters and checkpoints have one."""
    replication_factor: int | None = None
    """HERALD_TOPIC_REPLICATION_FACTOR: replicas of every topic; unset: the broker's default."""
    min_insync_replicas: int | None = None
    """HERALD_TOPIC_MIN_INSYNC_REPLICAS: `min.insync.replicas` of every topic (the producers write
    with acks=all); unset: the broker's default, not managed."""
    raw_retention_ms: int = 3 * DAY_MS
    """HERALD_RAW_RETENTION_MS (-1: for ever)."""
    domain_retention_ms: int = 7 * DAY_MS
    """HERALD_DOMAIN_RETENTION_MS (-1: for ever)."""
    dead_letter_retention_ms: int = 30 * DAY_MS
    """HERALD_DEAD_LETTER_RETENTION_MS (-1: for ever)."""
    message_max_bytes: int = 1_000_000
    """HERALD_KAFKA_MESSAGE_MAX_BYTES: the collector's largest record; the raw topic takes it."""
    processor_app_id: str = PROCESSOR_APP_ID
    """HERALD_PROCESSOR_APP_ID: prefix of Faust's internal topics."""
    processor_replication_factor: int = 1
    """HERALD_PROCESSOR_REPLICATION_FACTOR: replicas of Faust's internal topics."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TopicSettings:
        """Raises TopicSettingsError naming every bad variable (`herald_runtime.settings`)."""
        reader = EnvReader(env, error_type=TopicSettingsError)

        def topic(name: str, default: str) -> str:
            return reader.parsed(name, kafka_topic, default)

        def optional_count(name: str) -> int | None:
            """Unset: the broker's own value."""
            return None if reader.text(name) is None else reader.integer(name, 1, minimum=1)

        def retention(name: str, default: int) -> int:
            return reader.parsed(name, _retention_ms, default)

        replication = optional_count("HERALD_TOPIC_REPLICATION_FACTOR")
        min_insync = optional_count("HERALD_TOPIC_MIN_INSYNC_REPLICAS")
        if replication is not None and min_insync is not None and min_insync > replication:
            reader.problem(
                f"HERALD_TOPIC_MIN_INSYNC_REPLICAS ({min_insync}) must be at most"
                f" HERALD_TOPIC_REPLICATION_FACTOR ({replication}): no write would succeed",
                "HERALD_TOPIC_MIN_INSYNC_REPLICAS",
            )
        settings = cls(
            raw_topic=topic("HERALD_RAW_TOPIC", RAW_TOPIC),
            domain_topic=topic("HERALD_DOMAIN_TOPIC", DOMAIN_TOPIC),
            dead_letter_topic=topic("HERALD_DEAD_LETTER_TOPIC", DEAD_LETTER_TOPIC),
            checkpoint_topic=topic("HERALD_CHECKPOINT_TOPIC", CHECKPOINT_TOPIC),
            partitions=reader.integer("HERALD_TOPIC_PARTITIONS", 6, minimum=1),
            replication_factor=replication,
            min_insync_replicas=min_insync,
            raw_retention_ms=retention("HERALD_RAW_RETENTION_MS", 3 * DAY_MS),
            domain_retention_ms=retention("HERALD_DOMAIN_RETENTION_MS", 7 * DAY_MS),
            dead_letter_retention_ms=retention("HERALD_DEAD_LETTER_RETENTION_MS", 30 * DAY_MS),
            message_max_bytes=reader.integer(
                "HERALD_KAFKA_MESSAGE_MAX_BYTES", 1_000_000, minimum=1024, maximum=1_000_000_000
            ),
            processor_app_id=topic("HERALD_PROCESSOR_APP_ID", PROCESSOR_APP_ID),
            processor_replication_factor=reader.integer(
                "HERALD_PROCESSOR_REPLICATION_FACTOR", 1, minimum=1
            ),
        )
        reader.done()
        return settings


def _retention_ms(raw: str) -> int:
    """-1 (kept for ever) or at least an hour, in milliseconds; ValueError otherwise."""
    if raw == "-1":
        return -1
    if not raw.isdigit() or int(raw) < HOUR_MS:
        raise ValueError(f"must be -1 (for ever) or at least {HOUR_MS} (ms, an hour), not {raw!r}")
    return int(raw)


def herald_topics(settings: TopicSettings) -> tuple[TopicSpec, ...]:
    """The four topics the command creates: raw, domain, dead letters, checkpoints."""
    isr = (
        {"min.insync.replicas": Wanted(str(settings.min_insync_replicas))}
        if settings.min_insync_replicas is not None
        else {}
    )

    def deleting(retention_ms: int) -> dict[str, Wanted]:
        return {
            "cleanup.policy": Wanted("delete"),
            "retention.ms": Wanted(str(retention_ms)),
            **isr,
        }

    largest = settings.message_max_bytes
    return (
        TopicSpec(
            settings.raw_topic,
            Role.RAW,
            "HERALD_RAW_TOPIC",
            settings.partitions,
            settings.replication_factor,
            {
                **deleting(settings.raw_retention_ms),
                "max.message.bytes": Wanted(
                    str(max(largest, KAFKA_DEFAULT_MAX_MESSAGE_BYTES)), minimum=largest
                ),
            },
            "raw Events from the collectors, keyed by involved object; read by the processors",
        ),
        TopicSpec(
            settings.domain_topic,
            Role.DOMAIN,
            "HERALD_DOMAIN_TOPIC",
            settings.partitions,
            settings.replication_factor,
            deleting(settings.domain_retention_ms),
            "CloudEvents from the processors; read by the dispatchers and subscribers, replayed",
        ),
        TopicSpec(
            settings.dead_letter_topic,
            Role.DEAD_LETTERS,
            "HERALD_DEAD_LETTER_TOPIC",
            1,
            settings.replication_factor,
            deleting(settings.dead_letter_retention_ms),
            "records a stage set aside, with the reason in headers; read by people",
        ),
        TopicSpec(
            settings.checkpoint_topic,
            Role.CHECKPOINTS,
            "HERALD_CHECKPOINT_TOPIC",
            1,
            settings.replication_factor,
            {"cleanup.policy": Wanted("compact"), **isr},
            "the collectors' resume positions, one per watch scope; only the latest matters",
        ),
    )


def processor_topics(settings: TopicSettings) -> tuple[TopicSpec, ...]:
    """Faust's internal topics, as the processor creates them at its start: a changelog per table
    (co-partitioned with the raw topic, compacted) and the assignor's leader topic."""
    app = settings.processor_app_id
    changelogs = tuple(
        TopicSpec(
            f"{app}-{table}-changelog",
            Role.CHANGELOG,
            "HERALD_PROCESSOR_APP_ID",
            settings.partitions,
            settings.processor_replication_factor,
            {
                "cleanup.policy": Wanted("compact"),
                "segment.ms": Wanted(str(CHANGELOG_SEGMENT_MS)),
            },
            f"the processor's {table} table, co-partitioned with the raw topic",
        )
        for table in PROCESSOR_TABLES
    )
    leader = TopicSpec(
        f"{app}-__assignor-__leader",
        Role.ASSIGNOR,
        "HERALD_PROCESSOR_APP_ID",
        1,
        settings.processor_replication_factor,
        {},
        "Faust's partition assignor: which worker leads the group",
    )
    return (*changelogs, leader)


def missing_message(missing: Sequence[str], *, bootstrap: str) -> str:
    """What a service waiting for topics says (logged, and on its /readyz)."""
    names = ", ".join(repr(name) for name in missing)
    return (
        f"the topic{'s' if len(missing) > 1 else ''} {names} must be created on Kafka at"
        f" {bootstrap}: run `{ENSURE_COMMAND}` (with the same HERALD_* topic settings);"
        " waiting for them"
    )

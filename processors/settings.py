"""The processor's settings: read once from the environment (prefix `HERALD_`), validated at start.

Validated means what can be judged without connecting: a Kafka address that is not `host:port`,
a topic name Kafka would refuse, or a rule pack that does not load (named by file, rule and reason)
is a bad setting. A broker that does not answer, or a topic that
does not exist yet, is not: the processor waits for them (`processors.kafka`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from herald_contracts import DEAD_LETTER_TOPIC, DOMAIN_TOPIC, RAW_TOPIC
from herald_runtime.logs import LogFormat, LogLevel
from herald_runtime.settings import EnvReader, kafka_bootstrap, kafka_topic
from herald_runtime.settings import SettingsError as RuntimeSettingsError
from processors.catalogue import Catalogue
from processors.packs import (
    BUILTIN_PACKS,
    DEFAULT_PACKS,
    PackError,
    builtin_catalogue,
    load_catalogue,
)


class SettingsError(RuntimeSettingsError):
    """One or more bad settings; the service stops at start and names each."""


"""Kafka's own rule for topic names."""


@dataclass(frozen=True)
class ProcessorSettings:
    kafka_bootstrap: str
    """HERALD_KAFKA_BOOTSTRAP: host:port[,host:port...] of the Kafka brokers."""
    app_id: str = "herald-processors"
    """HERALD_PROCESSOR_APP_ID: the Faust app id, which is also the consumer group."""
    raw_topic: str = RAW_TOPIC
    """HERALD_RAW_TOPIC."""
    domain_topic: str = DOMAIN_TOPIC
    """HERALD_DOMAIN_TOPIC."""
    dead_letter_topic: str = DEAD_LETTER_TOPIC
    """HERALD_DEAD_LETTER_TOPIC."""
    data_dir: Path = Path("herald-processors-data")
    """HERALD_PROCESSOR_DATA_DIR: Faust's local state directory."""
    replication_factor: int = 1
    """HERALD_PROCESSOR_REPLICATION_FACTOR: replication of the tables' changelog topics."""
    occurrence_window_s: int = 43_200
    """HERALD_OCCURRENCE_WINDOW_S: how long occurrences are remembered (two windows of this size),
    well beyond the Kubernetes Event TTL (1 h by default, 3 h on OpenShift)."""
    session_timeout_s: int = 10
    """HERALD_PROCESSOR_SESSION_TIMEOUT_S: how soon the group notices a worker that died."""
    commit_stall_s: int = 30
    """HERALD_PROCESSOR_COMMIT_STALL_S: how long a raw partition with records waiting may go without
    a commit (Faust can drop records or leave a partition unfetched after a rebalance, faust issue
    #596) before the worker restarts itself to re-read from the committed offsets."""
    recovery_stall_s: int = 300
    """HERALD_PROCESSOR_RECOVERY_STALL_S: how long a worker may stay rebalancing or recovering its
    tables (Faust can hang there) before it restarts itself in place."""
    loop_stall_s: int = 60
    """HERALD_PROCESSOR_LOOP_STALL_S: how long the main loop (the wait for Kafka at start, then
    Faust's event loop) may go without turning before /healthz fails and the watchdog thread
    restarts the worker in place."""
    sweep_interval_s: int = 60
    """HERALD_PROCESSOR_SWEEP_INTERVAL_S: how often the tables are swept of entries past their
    retention (`processors.state`)."""
    stop_timeout_s: int = 20
    """HERALD_PROCESSOR_STOP_TIMEOUT_S: after SIGTERM or SIGINT, how long the worker may take to stop
    cleanly before it exits anyway (status 1); below Kubernetes' 30 s grace period."""
    producer_linger_ms: int = 5
    """HERALD_PROCESSOR_PRODUCER_LINGER_MS: how long the producer gathers domain events and table
    changelog writes into one request (0 to 1000); the domain events wait that much. With the
    fetches gathered (`fetch_min_bytes`), 25 ms instead of 5 saves 2-3 % of the worker's CPU at
    1,000-2,500 records/s and 2-8 % of its catch-up speed, at 20 ms more latency per event
    (`bench/processor.py`, 2026-11-30)."""
    fetch_min_bytes: int = 65_536
    """HERALD_PROCESSOR_FETCH_MIN_BYTES: Kafka's `fetch.min.bytes` for the worker's consumer (the raw
    topic, and the tables' changelogs when it recovers them; 1 to 52,428,800):
    the broker gathers this much before it answers a fetch, or `fetch_max_wait_ms` passes
    (`processors.fetching`). 1 answers at the first record (Faust's default)."""
    fetch_max_wait_ms: int = 10
    """HERALD_PROCESSOR_FETCH_MAX_WAIT_MS: Kafka's `fetch.max.wait.ms` (5 to 1,500): the longest a
    fetch waits for `fetch_min_bytes`; as much latency may be added to a record, and an idle worker
    makes one empty fetch round per this many milliseconds: about 5 % of a core at 10, 18 % at 1
    (hence the floor); Faust's default is 1,500."""
    metrics_port: int = 9102
    """HERALD_METRICS_PORT: Prometheus metrics; 0 disables."""
    metrics_host: str = "127.0.0.1"
    """HERALD_METRICS_HOST."""
    rule_packs: tuple[str, ...] = DEFAULT_PACKS
    """HERALD_PROCESSOR_RULE_PACKS: the built-in rule packs enabled, comma-separated names of
    `BUILTIN_PACKS` (default `argo-rollouts,argo-cd`; `kubernetes` and `flux` by name; `none` for
    none)."""
    rule_dir: Path | None = None
    """HERALD_PROCESSOR_RULE_DIR: a directory of user rule packs (`*.yaml`), e.g. a mounted
    ConfigMap; unset: none."""
    log_format: LogFormat = LogFormat.JSON
    """HERALD_LOG_FORMAT: json (one object per line) or text (`herald_runtime.logs`)."""
    log_level: LogLevel = LogLevel.INFO
    """HERALD_LOG_LEVEL: debug, info, warning or error."""
    catalogue: Catalogue = field(default_factory=builtin_catalogue, compare=False, repr=False)
    """The rules of the enabled packs, loaded and checked when the settings are read."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessorSettings:
        """Read and check every setting (the rule packs loaded); SettingsError listing each bad
        one."""
        reader = EnvReader(env, error_type=SettingsError)

        def text(name: str, default: str) -> str:
            return reader.text(name) or default

        bootstrap = reader.parsed("HERALD_KAFKA_BOOTSTRAP", kafka_bootstrap, "")
        if not bootstrap:
            reader.required("HERALD_KAFKA_BOOTSTRAP")
        topics = {
            name: reader.parsed(name, kafka_topic, default)
            for name, default in (
                ("HERALD_RAW_TOPIC", RAW_TOPIC),
                ("HERALD_DOMAIN_TOPIC", DOMAIN_TOPIC),
                ("HERALD_DEAD_LETTER_TOPIC", DEAD_LETTER_TOPIC),
            )
        }
        port = reader.integer("HERALD_METRICS_PORT", 9102, minimum=0, maximum=65535)
        numbers = {}
        for name, default, minimum in (
            ("HERALD_PROCESSOR_REPLICATION_FACTOR", 1, 1),
            ("HERALD_OCCURRENCE_WINDOW_S", 43_200, 60),
            ("HERALD_PROCESSOR_SESSION_TIMEOUT_S", 10, 6),
            ("HERALD_PROCESSOR_COMMIT_STALL_S", 30, 4),
            ("HERALD_PROCESSOR_RECOVERY_STALL_S", 300, 10),
            ("HERALD_PROCESSOR_LOOP_STALL_S", 60, 10),
            ("HERALD_PROCESSOR_STOP_TIMEOUT_S", 20, 1),
            ("HERALD_PROCESSOR_SWEEP_INTERVAL_S", 60, 1),
        ):
            numbers[name] = reader.integer(name, default, minimum=minimum)
        numbers["HERALD_PROCESSOR_PRODUCER_LINGER_MS"] = reader.integer(
            "HERALD_PROCESSOR_PRODUCER_LINGER_MS", 5, minimum=0, maximum=1000
        )
        numbers["HERALD_PROCESSOR_FETCH_MIN_BYTES"] = reader.integer(
            "HERALD_PROCESSOR_FETCH_MIN_BYTES", 65_536, minimum=1, maximum=52_428_800
        )
        numbers["HERALD_PROCESSOR_FETCH_MAX_WAIT_MS"] = reader.integer(
            "HERALD_PROCESSOR_FETCH_MAX_WAIT_MS", 10, minimum=5, maximum=1500
        )
        packs = reader.parsed("HERALD_PROCESSOR_RULE_PACKS", _rule_packs, DEFAULT_PACKS)
        rule_dir_text = text("HERALD_PROCESSOR_RULE_DIR", "")
        rule_dir = Path(rule_dir_text) if rule_dir_text else None
        catalogue = builtin_catalogue()
        if reader.fine("HERALD_PROCESSOR_RULE_PACKS"):
            try:
                catalogue = load_catalogue(builtin=packs, directory=rule_dir)
            except PackError as e:
                setting = (
                    "HERALD_PROCESSOR_RULE_PACKS"
                    if e.file in packs
                    else "HERALD_PROCESSOR_RULE_DIR"
                )
                reader.problem(f"{setting}: a rule pack cannot be loaded: {e}", setting)
        settings = cls(
            rule_packs=packs,
            rule_dir=rule_dir,
            catalogue=catalogue,
            kafka_bootstrap=bootstrap,
            replication_factor=numbers["HERALD_PROCESSOR_REPLICATION_FACTOR"],
            occurrence_window_s=numbers["HERALD_OCCURRENCE_WINDOW_S"],
            session_timeout_s=numbers["HERALD_PROCESSOR_SESSION_TIMEOUT_S"],
            commit_stall_s=numbers["HERALD_PROCESSOR_COMMIT_STALL_S"],
            recovery_stall_s=numbers["HERALD_PROCESSOR_RECOVERY_STALL_S"],
            loop_stall_s=numbers["HERALD_PROCESSOR_LOOP_STALL_S"],
            stop_timeout_s=numbers["HERALD_PROCESSOR_STOP_TIMEOUT_S"],
            sweep_interval_s=numbers["HERALD_PROCESSOR_SWEEP_INTERVAL_S"],
            producer_linger_ms=numbers["HERALD_PROCESSOR_PRODUCER_LINGER_MS"],
            fetch_min_bytes=numbers["HERALD_PROCESSOR_FETCH_MIN_BYTES"],
            fetch_max_wait_ms=numbers["HERALD_PROCESSOR_FETCH_MAX_WAIT_MS"],
            app_id=text("HERALD_PROCESSOR_APP_ID", "herald-processors"),
            raw_topic=topics["HERALD_RAW_TOPIC"],
            domain_topic=topics["HERALD_DOMAIN_TOPIC"],
            dead_letter_topic=topics["HERALD_DEAD_LETTER_TOPIC"],
            data_dir=Path(text("HERALD_PROCESSOR_DATA_DIR", "herald-processors-data")),
            metrics_port=port,
            metrics_host=text("HERALD_METRICS_HOST", "127.0.0.1"),
            log_format=reader.choice("HERALD_LOG_FORMAT", LogFormat, LogFormat.JSON),
            log_level=reader.choice("HERALD_LOG_LEVEL", LogLevel, LogLevel.INFO),
        )
        reader.done()
        return settings

    @property
    def faust_broker(self) -> str:
        return ";".join(f"kafka://{host.strip()}" for host in self.kafka_bootstrap.split(","))


def _rule_packs(text: str) -> tuple[str, ...]:
    """HERALD_PROCESSOR_RULE_PACKS read: built-in pack names, each once; `none` for none."""
    packs = tuple(p.strip() for p in text.split(",") if p.strip() and text != "none")
    if not packs and text.strip() != "none":
        raise SettingsError(
            f"HERALD_PROCESSOR_RULE_PACKS names no pack ({text!r}): `none` for none"
        )
    twice = sorted({p for p in packs if packs.count(p) > 1})
    if twice:
        raise SettingsError(f"HERALD_PROCESSOR_RULE_PACKS names {', '.join(twice)} twice")
    unknown = [p for p in packs if p not in BUILTIN_PACKS]
    if unknown:
        raise SettingsError(
            f"HERALD_PROCESSOR_RULE_PACKS names no built-in pack {', '.join(unknown)}"
            f" (built in: {', '.join(BUILTIN_PACKS)}; `none` for none)"
        )
    return packs

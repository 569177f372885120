"""The collector's settings: read once from the environment (prefix `HERALD_`), validated at start.

Every setting is documented in docs/settings.md. Nothing below `__main__` reads the environment.
Read with `herald_runtime.settings.EnvReader`: every bad setting is reported at once.
The clusters come from a cluster file (`HERALD_CLUSTERS_FILE`, see `collectors.config`), or, for a
single cluster, from `HERALD_CLUSTER_NAME` and its companions.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.config import ClusterSpec, valid_cluster_name
from collectors.errors import SettingsError
from collectors.leases import DEFAULT_GROUP, MAX_GROUP, valid_group
from herald_contracts import RAW_TOPIC
from herald_runtime.logs import LogFormat, LogLevel
from herald_runtime.settings import EnvReader, kafka_bootstrap, kafka_topic

CHECKPOINT_TOPIC = "herald.collector-checkpoints.v1"

MESSAGE_HEADROOM_BYTES = 65_536
"""What a record keeps, beside a shortened message, for the rest of its Event (metadata, involved
object, annotations) and the record's own fields."""

WATCH_READ_MARGIN_S = 30.0
"""How long past its server-side timeout (HERALD_WATCH_TIMEOUT_S) a watch may stay silent before its
connection counts as dead. A real API server sends nothing on a quiet watch of Events (no
bookmarks) until that timeout ends it, so a watch's read timeout must exceed it."""

DEFAULT_OWNER_LABELS = frozenset({"app.kubernetes.io/name", "app.kubernetes.io/part-of"})

_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
"""A Kubernetes label key: an optional DNS subdomain prefix and `/`, then a name of at most 63."""

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")

"""Kafka's rule for topic names (`.` and `..` aside)."""


@dataclass(frozen=True)
class CollectorSettings:
    kafka_bootstrap: str
    """HERALD_KAFKA_BOOTSTRAP: host:port[,host:port...] of the Kafka brokers."""
    clusters_file: Path | None = None
    """HERALD_CLUSTERS_FILE: the cluster file (YAML); re-read every HERALD_CLUSTERS_RELOAD_S."""
    single_cluster: ClusterSpec | None = None
    """Without a cluster file: HERALD_CLUSTER_NAME, HERALD_KUBECONFIG (empty: in-cluster),
    HERALD_KUBE_CONTEXT and HERALD_WATCH_NAMESPACE describe the one cluster."""
    raw_topic: str = RAW_TOPIC
    """HERALD_RAW_TOPIC."""
    checkpoint_topic: str = CHECKPOINT_TOPIC
    """HERALD_CHECKPOINT_TOPIC: compacted topic of per-scope checkpoints (created if missing)."""
    checkpoint_interval_s: float = 1.0
    """HERALD_CHECKPOINT_INTERVAL_S: how often moved checkpoints are written."""
    clusters_reload_s: float = 5.0
    """HERALD_CLUSTERS_RELOAD_S: how often the cluster file is checked for changes."""
    lease_namespace: str | None = None
    """HERALD_LEASE_NAMESPACE: where the replicas' Leases live, in the home cluster (the one the
    collector runs in). Unset or empty: no Leases, this one collector watches every cluster (the
    local and development mode; never run two like that on one cluster file)."""
    lease_holder: str = ""
    """HERALD_LEASE_HOLDER: this replica's identity in the Leases (the pod's name); default: the
    host name. Unique per replica."""
    lease_group: str = DEFAULT_GROUP
    """HERALD_LEASE_GROUP: prefixes the Leases' names and labels them; replicas share the clusters
    with those of their group only (one per Deployment: the chart sets the collector's name)."""
    lease_kubeconfig: Path | None = None
    """HERALD_LEASE_KUBECONFIG: kubeconfig of the home cluster; unset: in-cluster config."""
    lease_duration_s: int = 15
    """HERALD_LEASE_DURATION_S: a Lease unchanged this long has expired and is taken over."""
    lease_renew_deadline_s: float = 10.0
    """HERALD_LEASE_RENEW_DEADLINE_S: a cluster's watch stops when its Lease was not renewed
    within this; below HERALD_LEASE_DURATION_S, so it stops before anyone may take it over."""
    lease_retry_period_s: float = 2.0
    """HERALD_LEASE_RETRY_PERIOD_S: the beat: Leases are listed, renewed and taken this often."""
    list_page_size: int = 500
    """HERALD_LIST_PAGE_SIZE: items per page of a list."""
    watch_timeout_s: int = 120
    """HERALD_WATCH_TIMEOUT_S: server-side timeout of one watch request (`timeoutSeconds`); the
    server then ends it cleanly, and it is resumed. A watch's client read timeout is this plus
    WATCH_READ_MARGIN_S. Keep it well below the API server's `--etcd-compaction-interval` (5 min
    by default): a quiet scope's position trails the server by one watch timeout (see
    docs/collectors.md, "A quiet cluster sends nothing"), and a position compacted away is a 410
    and a relist at every quiet watch."""
    connect_timeout_s: float = 5.0
    """HERALD_CONNECT_TIMEOUT_S: connect timeout of every API request."""
    read_timeout_s: float = 90.0
    """HERALD_READ_TIMEOUT_S: read timeout of list requests (the longest silence while a list
    answers). Watches have their own: `watch_read_timeout_s`."""
    backoff_base_s: float = 0.5
    """HERALD_BACKOFF_BASE_S: first wait after an API error; it doubles with each further error."""
    backoff_max_s: float = 30.0
    """HERALD_BACKOFF_MAX_S: longest wait between retries after API errors."""
    kafka_queue_max_messages: int = 20_000
    """HERALD_KAFKA_QUEUE_MAX_MESSAGES: records the producer holds before backpressure."""
    kafka_queue_max_kbytes: int = 32_768
    """HERALD_KAFKA_QUEUE_MAX_KBYTES: bytes (KiB) the producer holds before backpressure."""
    kafka_message_timeout_s: float = 300.0
    """HERALD_KAFKA_MESSAGE_TIMEOUT_S: how long a record may wait for the broker before it fails
    (its watch then re-reads from the checkpoint)."""
    kafka_message_max_bytes: int = 1_000_000
    """HERALD_KAFKA_MESSAGE_MAX_BYTES: the producer's `message.max.bytes`, the largest record it
    sends; at most the raw topic's `max.message.bytes` (checked once Kafka answers)."""
    event_message_max_bytes: int = 65_536
    """HERALD_EVENT_MESSAGE_MAX_BYTES: longer Event messages are shortened to this, with a marker;
    must leave MESSAGE_HEADROOM_BYTES of HERALD_KAFKA_MESSAGE_MAX_BYTES for the rest of the Event."""
    metrics_port: int = 9101
    """HERALD_METRICS_PORT: /metrics, /healthz and /readyz; 0 disables."""
    metrics_host: str = "127.0.0.1"
    """HERALD_METRICS_HOST."""
    log_format: LogFormat = LogFormat.JSON
    """HERALD_LOG_FORMAT: json (one object per line) or text (`herald_runtime.logs`)."""
    log_level: LogLevel = LogLevel.INFO
    """HERALD_LOG_LEVEL: debug, info, warning or error."""
    owner_resolution: bool = True
    """HERALD_OWNER_RESOLUTION: true (default) or false: resolve each Event's owners (workload,
    Argo CD application) from metadata-only list/watch caches of the owning kinds."""
    owner_labels: frozenset[str] = DEFAULT_OWNER_LABELS
    """HERALD_OWNER_LABELS: comma-separated label keys copied from the owner chain into the raw
    record's `labels` (empty: none)."""
    owner_instance_label: str = "app.kubernetes.io/instance"
    """HERALD_OWNER_INSTANCE_LABEL: the label Argo CD's label tracking writes the application's
    name in (its `application.instanceLabelKey`), read when an object has no tracking annotation."""
    owner_cache_max_objects: int = 200_000
    """HERALD_OWNER_CACHE_MAX_OBJECTS: most objects cached per kind and watch scope; objects past
    it are not cached (counted), and Events about them are published without owners."""
    owner_sync_timeout_s: float = 30.0
    """HERALD_OWNER_SYNC_TIMEOUT_S: the longest a scope's Event watch waits, at start, for the
    owner caches' first lists."""

    @property
    def watch_read_timeout_s(self) -> float:
        """The longest silence on a watch before its connection counts as dead: longer than the
        server-side timeout, so that a quiet watch (no Events, no bookmarks) ends cleanly."""
        return self.watch_timeout_s + WATCH_READ_MARGIN_S

    @property
    def contact_limit_s(self) -> float:
        """/readyz's `not_in_contact` (it does not decide readiness): the longest a watch may go
        without an answer from its API server. A healthy quiet watch hears nothing until the
        server ends it; then a request may take up to the read timeout."""
        return self.watch_read_timeout_s + self.read_timeout_s

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, need_clusters: bool = True) -> CollectorSettings:
        """Read and check every setting; SettingsError listing each bad one."""
        reader = EnvReader(env, error_type=SettingsError)
        bootstrap = reader.parsed("HERALD_KAFKA_BOOTSTRAP", kafka_bootstrap, "")
        if not bootstrap:
            reader.required("HERALD_KAFKA_BOOTSTRAP")
        clusters_file = reader.text("HERALD_CLUSTERS_FILE")
        single = _single_cluster(reader)
        if clusters_file is not None and reader.text("HERALD_CLUSTER_NAME") is not None:
            reader.problem(
                "set HERALD_CLUSTERS_FILE or HERALD_CLUSTER_NAME, not both",
                "HERALD_CLUSTERS_FILE",
                "HERALD_CLUSTER_NAME",
            )
        if need_clusters and clusters_file is None and reader.text("HERALD_CLUSTER_NAME") is None:
            reader.problem(
                "HERALD_CLUSTERS_FILE (or HERALD_CLUSTER_NAME for one cluster) is required",
                "HERALD_CLUSTERS_FILE",
            )
        if clusters_file is not None and not Path(clusters_file).is_file():
            reader.problem(
                f"HERALD_CLUSTERS_FILE names {clusters_file!r}, which is not a file",
                "HERALD_CLUSTERS_FILE",
            )
        for replaced in ("HERALD_REPLICA_COUNT", "HERALD_REPLICA_INDEX"):
            if reader.text(replaced) is not None:
                reader.problem(
                    f"{replaced} is no longer used: replicas share the clusters through Leases "
                    "(set HERALD_LEASE_NAMESPACE and HERALD_LEASE_HOLDER instead; see "
                    "docs/collectors.md, Replicas and Leases)",
                    replaced,
                )
        leases = _leases(reader, env)
        kafka_message_max_bytes = int(
            reader.number(
                "HERALD_KAFKA_MESSAGE_MAX_BYTES",
                1_000_000,
                minimum=MESSAGE_HEADROOM_BYTES + 1024,
                maximum=1_000_000_000,  # librdkafka's own bound
            )
        )
        event_message_max_bytes = int(
            reader.number("HERALD_EVENT_MESSAGE_MAX_BYTES", 65_536, minimum=1024)
        )
        if event_message_max_bytes > kafka_message_max_bytes - MESSAGE_HEADROOM_BYTES:
            reader.problem(
                f"HERALD_EVENT_MESSAGE_MAX_BYTES ({event_message_max_bytes}) must leave "
                f"{MESSAGE_HEADROOM_BYTES} bytes of the producer's message.max.bytes "
                f"(HERALD_KAFKA_MESSAGE_MAX_BYTES, {kafka_message_max_bytes}) for the rest of the "
                f"Event: at most {kafka_message_max_bytes - MESSAGE_HEADROOM_BYTES}",
                "HERALD_EVENT_MESSAGE_MAX_BYTES",
            )
        settings = cls(
            kafka_bootstrap=bootstrap,
            clusters_file=Path(clusters_file) if clusters_file else None,
            single_cluster=single if clusters_file is None else None,
            raw_topic=reader.parsed("HERALD_RAW_TOPIC", kafka_topic, RAW_TOPIC),
            checkpoint_topic=reader.parsed(
                "HERALD_CHECKPOINT_TOPIC", kafka_topic, CHECKPOINT_TOPIC
            ),
            checkpoint_interval_s=reader.number("HERALD_CHECKPOINT_INTERVAL_S", 1.0, minimum=0.05),
            clusters_reload_s=reader.number("HERALD_CLUSTERS_RELOAD_S", 5.0, minimum=0.1),
            **leases,
            list_page_size=int(reader.number("HERALD_LIST_PAGE_SIZE", 500, minimum=1)),
            watch_timeout_s=int(reader.number("HERALD_WATCH_TIMEOUT_S", 120, minimum=1)),
            connect_timeout_s=reader.number("HERALD_CONNECT_TIMEOUT_S", 5.0, minimum=0.1),
            read_timeout_s=reader.number("HERALD_READ_TIMEOUT_S", 90.0, minimum=0.1),
            backoff_base_s=reader.number("HERALD_BACKOFF_BASE_S", 0.5, minimum=0.01),
            backoff_max_s=reader.number("HERALD_BACKOFF_MAX_S", 30.0, minimum=0.01),
            kafka_queue_max_messages=int(
                reader.number("HERALD_KAFKA_QUEUE_MAX_MESSAGES", 20_000, minimum=1)
            ),
            kafka_queue_max_kbytes=int(
                reader.number("HERALD_KAFKA_QUEUE_MAX_KBYTES", 32_768, minimum=1)
            ),
            kafka_message_timeout_s=reader.number(
                "HERALD_KAFKA_MESSAGE_TIMEOUT_S", 300.0, minimum=1
            ),
            kafka_message_max_bytes=kafka_message_max_bytes,
            event_message_max_bytes=event_message_max_bytes,
            metrics_port=int(reader.number("HERALD_METRICS_PORT", 9101, minimum=0, maximum=65535)),
            metrics_host=reader.text("HERALD_METRICS_HOST") or "127.0.0.1",
            log_format=reader.choice("HERALD_LOG_FORMAT", LogFormat, LogFormat.JSON),
            log_level=reader.choice("HERALD_LOG_LEVEL", LogLevel, LogLevel.INFO),
            owner_resolution=reader.boolean("HERALD_OWNER_RESOLUTION", True),
            owner_labels=_label_keys(reader, env),
            owner_instance_label=reader.parsed(
                "HERALD_OWNER_INSTANCE_LABEL",
                _label_key("HERALD_OWNER_INSTANCE_LABEL"),
                "app.kubernetes.io/instance",
            ),
            owner_cache_max_objects=int(
                reader.number("HERALD_OWNER_CACHE_MAX_OBJECTS", 200_000, minimum=1)
            ),
            owner_sync_timeout_s=reader.number("HERALD_OWNER_SYNC_TIMEOUT_S", 30.0, minimum=0),
        )
        reader.done()
        return settings


def _label_keys(reader: EnvReader, env: Mapping[str, str]) -> frozenset[str]:
    """HERALD_OWNER_LABELS: unset is the default; set but empty is none."""
    if "HERALD_OWNER_LABELS" not in env:
        return DEFAULT_OWNER_LABELS
    name = "HERALD_OWNER_LABELS"
    keys = set()
    for key in (k.strip() for k in (reader.text(name) or "").split(",")):
        if key:
            try:
                keys.add(_label_key(name)(key))
            except SettingsError as e:
                reader.problem(str(e), name)
    return frozenset(keys)


def _label_key(name: str) -> Callable[[str], str]:
    def parse(key: str) -> str:
        if len(key) > 253 + 1 + 63 or not _LABEL_KEY.fullmatch(key):
            raise SettingsError(f"{name}: {key!r} is not a Kubernetes label key")
        return key

    return parse


def _single_cluster(reader: EnvReader) -> ClusterSpec | None:
    name = reader.text("HERALD_CLUSTER_NAME")
    if name is None:
        return None
    if not valid_cluster_name(name):
        reader.problem(
            f"HERALD_CLUSTER_NAME {name!r} must not contain '/', spaces or control characters",
            "HERALD_CLUSTER_NAME",
        )
    kubeconfig = reader.text("HERALD_KUBECONFIG")
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        reader.problem(
            f"HERALD_KUBECONFIG names {kubeconfig!r}, which is not a file", "HERALD_KUBECONFIG"
        )
    namespace = reader.text("HERALD_WATCH_NAMESPACE")
    return ClusterSpec(
        name=name,
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        context=reader.text("HERALD_KUBE_CONTEXT"),
        namespaces=(namespace,) if namespace else (),
    )


def _leases(reader: EnvReader, env: Mapping[str, str]) -> dict[str, Any]:
    namespace = reader.text("HERALD_LEASE_NAMESPACE")
    kubeconfig = reader.text("HERALD_LEASE_KUBECONFIG")
    if namespace is None:
        if kubeconfig is not None:
            reader.problem(
                "HERALD_LEASE_KUBECONFIG is set but HERALD_LEASE_NAMESPACE is not (no Leases "
                "without a namespace)",
                "HERALD_LEASE_KUBECONFIG",
            )
        return {}
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        reader.problem(
            f"HERALD_LEASE_NAMESPACE must be a namespace name, not {namespace!r}",
            "HERALD_LEASE_NAMESPACE",
        )
    if kubeconfig is not None and not Path(kubeconfig).is_file():
        reader.problem(
            f"HERALD_LEASE_KUBECONFIG names {kubeconfig!r}, which is not a file",
            "HERALD_LEASE_KUBECONFIG",
        )
    holder = reader.text("HERALD_LEASE_HOLDER") or env.get("HOSTNAME", "").strip()
    holder = holder or socket.gethostname()
    if not holder or len(holder) > 253 or not holder.isprintable() or " " in holder:
        reader.problem(
            f"HERALD_LEASE_HOLDER must be a name without spaces (the pod's), not {holder!r}",
            "HERALD_LEASE_HOLDER",
        )
    group = reader.text("HERALD_LEASE_GROUP") or DEFAULT_GROUP
    if not valid_group(group):
        reader.problem(
            f"HERALD_LEASE_GROUP must be a DNS-1123 label (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit) of at most {MAX_GROUP} characters, "
            f"not {group!r}",
            "HERALD_LEASE_GROUP",
        )
    duration = reader.integer("HERALD_LEASE_DURATION_S", 15, minimum=1, maximum=3600)
    deadline = reader.number("HERALD_LEASE_RENEW_DEADLINE_S", 10.0, minimum=0.1)
    retry = reader.number("HERALD_LEASE_RETRY_PERIOD_S", 2.0, minimum=0.05)
    timings = (
        "HERALD_LEASE_RETRY_PERIOD_S",
        "HERALD_LEASE_RENEW_DEADLINE_S",
        "HERALD_LEASE_DURATION_S",
    )
    if not retry < deadline < duration and reader.fine(*timings):
        reader.problem(
            "HERALD_LEASE_RETRY_PERIOD_S < HERALD_LEASE_RENEW_DEADLINE_S < HERALD_LEASE_DURATION_S "
            f"is required (a watch stops before its Lease may be taken over), not {retry:g} < "
            f"{deadline:g} < {duration}",
            *timings,
        )
    return {
        "lease_namespace": namespace,
        "lease_holder": holder,
        "lease_group": group,
        "lease_kubeconfig": Path(kubeconfig) if kubeconfig else None,
        "lease_duration_s": duration,
        "lease_renew_deadline_s": deadline,
        "lease_retry_period_s": retry,
    }

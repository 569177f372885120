"""The collector's settings: read once from the environment (prefix `HERALD_`), validated at start.

Every setting is documented in docs/settings.md. Nothing below `__main__` reads the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from collectors.errors import SettingsError
from herald_contracts import RAW_TOPIC


@dataclass(frozen=True)
class CollectorSettings:
    cluster_name: str
    """HERALD_CLUSTER_NAME: the name this cluster has in every record and event."""
    kubeconfig: Path | None
    """HERALD_KUBECONFIG: kubeconfig file; empty means the in-cluster service account."""
    kube_context: str | None
    """HERALD_KUBE_CONTEXT: context in the kubeconfig; empty means its current context."""
    kafka_bootstrap: str
    """HERALD_KAFKA_BOOTSTRAP: host:port[,host:port...] of the Kafka brokers."""
    raw_topic: str = RAW_TOPIC
    """HERALD_RAW_TOPIC."""
    namespace: str | None = None
    """HERALD_WATCH_NAMESPACE: watch one namespace only; empty means all."""
    list_page_size: int = 500
    """HERALD_LIST_PAGE_SIZE: items per page of the initial list."""
    watch_timeout_s: int = 300
    """HERALD_WATCH_TIMEOUT_S: server-side timeout of one watch request; then it is resumed."""
    connect_timeout_s: float = 5.0
    """HERALD_CONNECT_TIMEOUT_S: connect timeout of every API request."""
    read_timeout_s: float = 90.0
    """HERALD_READ_TIMEOUT_S: longest silence on a watch before the connection is taken as dead."""
    metrics_port: int = 9101
    """HERALD_METRICS_PORT: Prometheus metrics on 127.0.0.1 unless HERALD_METRICS_HOST says; 0 disables."""
    metrics_host: str = "127.0.0.1"
    """HERALD_METRICS_HOST."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CollectorSettings:
        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        def required(name: str) -> str:
            value = text(name)
            if value is None:
                raise SettingsError(f"{name} is required")
            return value

        def number(name: str, default: float, *, kind: type[int] | type[float] = int) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError as e:
                raise SettingsError(f"{name} must be a {kind.__name__}, not {raw!r}") from e
            if value < 0:
                raise SettingsError(f"{name} must not be negative, not {raw!r}")
            return value

        kubeconfig = text("HERALD_KUBECONFIG")
        if kubeconfig is not None and not Path(kubeconfig).is_file():
            raise SettingsError(f"HERALD_KUBECONFIG names {kubeconfig!r}, which is not a file")
        page = int(number("HERALD_LIST_PAGE_SIZE", 500))
        if page == 0:
            raise SettingsError("HERALD_LIST_PAGE_SIZE must be at least 1")
        return cls(
            cluster_name=_cluster_name(required("HERALD_CLUSTER_NAME")),
            kubeconfig=Path(kubeconfig) if kubeconfig else None,
            kube_context=text("HERALD_KUBE_CONTEXT"),
            kafka_bootstrap=required("HERALD_KAFKA_BOOTSTRAP"),
            raw_topic=text("HERALD_RAW_TOPIC", RAW_TOPIC) or RAW_TOPIC,
            namespace=text("HERALD_WATCH_NAMESPACE"),
            list_page_size=page,
            watch_timeout_s=int(number("HERALD_WATCH_TIMEOUT_S", 300)),
            connect_timeout_s=number("HERALD_CONNECT_TIMEOUT_S", 5.0, kind=float),
            read_timeout_s=number("HERALD_READ_TIMEOUT_S", 90.0, kind=float),
            metrics_port=int(number("HERALD_METRICS_PORT", 9101)),
            metrics_host=text("HERALD_METRICS_HOST", "127.0.0.1") or "127.0.0.1",
        )


def _cluster_name(name: str) -> str:
    if "/" in name or not name.isprintable() or " " in name:
        raise SettingsError(
            f"HERALD_CLUSTER_NAME {name!r} must not contain '/', spaces or control characters"
        )
    return name

"""The cluster file: which clusters the collectors watch. Pure.

    clusters:
      - name: prod-eu                  # required; unique; no '/', spaces or control characters
        kubeconfig: /etc/herald/prod-eu.yaml   # or `in_cluster: true`
        context: prod-eu               # optional: the kubeconfig's current context otherwise
        enabled: true                  # optional, default true
        namespaces: [billing, shop]    # optional, default: all namespaces (one watch)
        include: {kinds: [Rollout, Application], namespaces: [...], reasons: [...]}   # optional
        exclude: {reasons: [ScalingReplicaSet]}                                      # optional

Parsing returns the whole configuration or raises ConfigError naming the first problem, so a file with
an error never half-applies: the supervisor keeps the previous good configuration in force.
Which replica watches which cluster is not the file's business: the replicas share them through
Leases (`collectors.leases`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from collectors.errors import CollectorError
from collectors.filters import ADMIT_ALL, EventFilter, Selection


class ConfigError(CollectorError):
    """The cluster file cannot be used; the message names the file, the cluster and the field."""


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    kubeconfig: Path | None
    """None means the in-cluster service account."""
    context: str | None = None
    enabled: bool = True
    namespaces: tuple[str, ...] = ()
    """Empty: all namespaces, in one watch."""
    filter: EventFilter = ADMIT_ALL

    @property
    def scopes(self) -> tuple[str | None, ...]:
        """The watches this cluster needs: one per namespace, or one for all (None)."""
        return self.namespaces or (None,)


def valid_cluster_name(name: str) -> bool:
    return bool(name) and name.isprintable() and not any(c in name for c in "/ \t")


def parse_cluster_file(text: str, *, source: str) -> tuple[ClusterSpec, ...]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not YAML: {e}") from e
    if not isinstance(document, dict) or not isinstance(document.get("clusters"), list):
        raise ConfigError(f"{source}: must be a mapping with a 'clusters' list")
    specs: list[ClusterSpec] = []
    for index, entry in enumerate(document["clusters"]):
        specs.append(_cluster(entry, where=f"{source}: clusters[{index}]"))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{source}: cluster names must be unique: {', '.join(duplicates)}")
    return tuple(specs)


def _cluster(entry: Any, *, where: str) -> ClusterSpec:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping")
    known = {
        "name",
        "kubeconfig",
        "context",
        "in_cluster",
        "enabled",
        "namespaces",
        "include",
        "exclude",
    }
    unknown = sorted(set(entry) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not valid_cluster_name(name):
        raise ConfigError(
            f"{where}: 'name' must be a non-empty string without '/', spaces or control characters"
        )
    where = f"{where} ({name})"
    in_cluster = entry.get("in_cluster", False)
    kubeconfig = entry.get("kubeconfig")
    if not isinstance(in_cluster, bool):
        raise ConfigError(f"{where}: 'in_cluster' must be true or false")
    if in_cluster == (kubeconfig is not None):
        raise ConfigError(f"{where}: give exactly one of 'kubeconfig' and 'in_cluster: true'")
    if kubeconfig is not None and not isinstance(kubeconfig, str):
        raise ConfigError(f"{where}: 'kubeconfig' must be a path")
    context = entry.get("context")
    if context is not None and not isinstance(context, str):
        raise ConfigError(f"{where}: 'context' must be a string")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}: 'enabled' must be true or false")
    return ClusterSpec(
        name=name,
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        context=context,
        enabled=enabled,
        namespaces=_strings(entry.get("namespaces"), where=f"{where}: 'namespaces'"),
        filter=EventFilter(
            include=_selection(entry.get("include"), where=f"{where}: 'include'"),
            exclude=_selection(entry.get("exclude"), where=f"{where}: 'exclude'"),
        ),
    )


def _selection(value: Any, *, where: str) -> Selection:
    if value is None:
        return Selection()
    if not isinstance(value, dict) or set(value) - {"kinds", "namespaces", "reasons"}:
        raise ConfigError(f"{where}: must be a mapping of kinds, namespaces and reasons")
    return Selection(
        kinds=frozenset(_strings(value.get("kinds"), where=f"{where}.kinds")),
        namespaces=frozenset(_strings(value.get("namespaces"), where=f"{where}.namespaces")),
        reasons=frozenset(_strings(value.get("reasons"), where=f"{where}.reasons")),
    )


def _strings(value: Any, *, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where} must be a list of non-empty strings")
    return tuple(value)

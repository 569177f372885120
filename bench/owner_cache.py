"""Owner cache memory benchmark: what the collector's owner caches cost for a cluster of 50,000 Pods.

    .venv/bin/python bench/owner_cache.py [--pods 50000] [--pods-per-deployment 10]
                                          [--replicasets-per-deployment 3]

Builds, in this process, the caches one watch scope keeps (`collectors.ownerwatch.OwnerCaches`'s
indexes), from synthetic PartialObjectMetadata items shaped like a real cluster's (generated names,
uids, the labels and annotations Deployments and their Pods usually carry, Argo CD's tracking
annotation on every Deployment), fed page by page as a list delivers them (each page dropped once
cached). It prints the resident set size before (the interpreter and every module a collector loads:
the kubernetes client, confluent-kafka, prometheus-client) and after,
their ratio, the bytes per Pod (all kinds' caches divided by the Pods), the time to resolve every
Pod's owners once, and what `HERALD_OWNER_CACHE_MAX_OBJECTS` then bounds a scope to.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import collectors.__main__  # noqa: E402, F401 - the collector's own footprint is the baseline
from collectors.owners import OwnerIndex, Resource, parse_meta, resolve  # noqa: E402
from collectors.settings import DEFAULT_OWNER_LABELS  # noqa: E402

PAGE = 500
TEAMS = ("payments", "checkout", "search", "identity", "platform", "data", "growth", "ml")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _uid(n: int, kind: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{n}"))


def _hash(n: int) -> str:
    return f"{(n * 2654435761) % 16**10:010x}"[:10]


def _owner(kind: str, api_version: str, name: str, uid: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": api_version,
            "kind": kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def _common_labels(app: str, team: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/part-of": team,
        "app.kubernetes.io/instance": f"{team}-{app}",
        "app.kubernetes.io/managed-by": "argocd",
        "team": team,
        "tier": "backend",
    }


def deployments(count: int) -> Iterator[dict[str, Any]]:
    for d in range(count):
        team, app, namespace = TEAMS[d % len(TEAMS)], f"svc-{d}", f"ns-{d % 200}"
        yield {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {
                "name": app,
                "namespace": namespace,
                "uid": _uid(d, "Deployment"),
                "resourceVersion": str(1000 + d),
                "generation": 7,
                "creationTimestamp": "2026-08-01T10:00:00Z",
                "labels": _common_labels(app, team),
                "annotations": {
                    "deployment.kubernetes.io/revision": "7",
                    "argocd.argoproj.io/tracking-id": (
                        f"{team}-{app}:apps/Deployment:{namespace}/{app}"
                    ),
                    "kubectl.kubernetes.io/last-applied-configuration": "",
                },
            },
        }


def replicasets(deployment_count: int, per_deployment: int) -> Iterator[dict[str, Any]]:
    for d in range(deployment_count):
        team, app, namespace = TEAMS[d % len(TEAMS)], f"svc-{d}", f"ns-{d % 200}"
        for r in range(per_deployment):
            n = d * per_deployment + r
            yield {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {
                    "name": f"{app}-{_hash(n)}",
                    "namespace": namespace,
                    "uid": _uid(n, "ReplicaSet"),
                    "resourceVersion": str(100_000 + n),
                    "generation": 3,
                    "creationTimestamp": "2026-08-01T10:00:00Z",
                    "labels": {**_common_labels(app, team), "pod-template-hash": _hash(n)},
                    "annotations": {
                        "deployment.kubernetes.io/revision": str(r + 1),
                        "deployment.kubernetes.io/desired-replicas": "10",
                        "deployment.kubernetes.io/max-replicas": "13",
                    },
                    "ownerReferences": _owner("Deployment", "apps/v1", app, _uid(d, "Deployment")),
                },
            }


def pods(
    count: int, per_deployment: int, replicasets_per_deployment: int
) -> Iterator[dict[str, Any]]:
    for p in range(count):
        d = p // per_deployment
        team, app, namespace = TEAMS[d % len(TEAMS)], f"svc-{d}", f"ns-{d % 200}"
        n = d * replicasets_per_deployment + replicasets_per_deployment - 1  # the newest
        replicaset = f"{app}-{_hash(n)}"
        yield {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {
                "name": f"{replicaset}-{_hash(p)[:5]}",
                "generateName": f"{replicaset}-",
                "namespace": namespace,
                "uid": _uid(p, "Pod"),
                "resourceVersion": str(1_000_000 + p),
                "creationTimestamp": "2026-08-01T10:00:00Z",
                "labels": {**_common_labels(app, team), "pod-template-hash": _hash(n)},
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": "9090",
                    "kubectl.kubernetes.io/restartedAt": "2026-08-20T09:00:00Z",
                },
                "ownerReferences": _owner(
                    "ReplicaSet", "apps/v1", replicaset, _uid(n, "ReplicaSet")
                ),
            },
        }


def fill(index: OwnerIndex, items: Iterator[dict[str, Any]], selected: frozenset[str]) -> int:
    """Cache the items page by page as a list delivers them; how many were refused."""
    refused = 0
    page: list[dict[str, Any]] = []
    for item in items:
        page.append(item)
        if len(page) == PAGE:
            refused += _cache(index, page, selected)
            page = []
    return refused + _cache(index, page, selected)


def _cache(index: OwnerIndex, page: list[dict[str, Any]], selected: frozenset[str]) -> int:
    refused = 0
    for item in page:
        meta = parse_meta(item, selected_labels=selected)
        if meta is not None and not index.add(meta):
            refused += 1
    return refused


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=50_000)
    parser.add_argument("--pods-per-deployment", type=int, default=10)
    parser.add_argument("--replicasets-per-deployment", type=int, default=3)
    parser.add_argument("--max-objects", type=int, default=200_000)
    args = parser.parse_args()
    deployment_count = args.pods // args.pods_per_deployment
    selected = DEFAULT_OWNER_LABELS
    indexes = {r.kind: OwnerIndex(max_objects=args.max_objects) for r in Resource}

    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    refused = fill(indexes["Deployment"], deployments(deployment_count), selected)
    refused += fill(
        indexes["ReplicaSet"],
        replicasets(deployment_count, args.replicasets_per_deployment),
        selected,
    )
    refused += fill(
        indexes["Pod"],
        pods(args.pods, args.pods_per_deployment, args.replicasets_per_deployment),
        selected,
    )
    filled_s = time.perf_counter() - started
    gc.collect()
    after = rss_bytes()

    involved = [
        {"kind": "Pod", **{k: item["metadata"][k] for k in ("namespace", "name", "uid")}}
        for item in pods(args.pods, args.pods_per_deployment, args.replicasets_per_deployment)
    ]
    started = time.perf_counter()
    resolved = sum(
        1
        for obj in involved
        if (r := resolve(obj, indexes)) is not None and r.ownership.application is not None
    )
    resolve_s = time.perf_counter() - started

    objects = sum(len(i) for i in indexes.values())
    grown = after - before
    print(
        f"cached: {len(indexes['Pod'])} Pods, {len(indexes['ReplicaSet'])} ReplicaSets, "
        f"{len(indexes['Deployment'])} Deployments ({objects} objects, {refused} refused) "
        f"in {filled_s:.1f}s"
    )
    print(f"RSS without the caches: {before / 2**20:.1f} MiB")
    print(f"RSS with the caches:    {after / 2**20:.1f} MiB (ratio {after / before:.2f})")
    print(
        f"caches: {grown / 2**20:.1f} MiB, {grown / args.pods:.0f} bytes per Pod "
        f"({grown / objects:.0f} bytes per object)"
    )
    print(
        f"resolved every Pod to its Deployment and application: {resolved}/{len(involved)} "
        f"in {resolve_s:.2f}s ({len(involved) / resolve_s:,.0f} per second)"
    )
    print(
        f"bound: HERALD_OWNER_CACHE_MAX_OBJECTS={args.max_objects} per kind and scope: at most "
        f"about {args.max_objects * grown / args.pods / 2**20:.0f} MiB of Pods per scope at this "
        "shape"
    )


if __name__ == "__main__":
    main()

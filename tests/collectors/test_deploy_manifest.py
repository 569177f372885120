"""The Kubernetes manifest for collectors agrees with the code: settings it sets exist, probes hit
the endpoints the collector serves, and its cluster file parses."""

from __future__ import annotations

from pathlib import Path

import yaml

from collectors.config import parse_cluster_file
from collectors.owners import Resource

MANIFEST = Path(__file__).resolve().parents[2] / "deploy/kubernetes/collectors.yaml"
SETTINGS_DOC = Path(__file__).resolve().parents[2] / "docs/settings.md"


def _documents() -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}


def test_every_variable_the_manifest_sets_is_a_documented_setting() -> None:
    container = _documents()["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    documented = SETTINGS_DOC.read_text()
    for variable in container["env"]:
        assert f"`{variable['name']}`" in documented, variable["name"]


def test_probes_use_the_collectors_health_endpoints() -> None:
    container = _documents()["StatefulSet"]["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_replica_count_setting_matches_the_replicas() -> None:
    statefulset = _documents()["StatefulSet"]
    env = {
        e["name"]: e["value"]
        for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert int(env["HERALD_REPLICA_COUNT"]) == statefulset["spec"]["replicas"]


def test_the_example_cluster_file_parses() -> None:
    specs = parse_cluster_file(
        _documents()["ConfigMap"]["data"]["clusters.yaml"], source="ConfigMap"
    )
    assert [s.name for s in specs] == ["local", "prod-eu"]


def test_rbac_allows_listing_and_watching_events() -> None:
    rule = _documents()["ClusterRole"]["rules"][0]
    assert rule["resources"] == ["events"]
    assert {"list", "watch"} <= set(rule["verbs"])


def test_rbac_grows_only_by_list_and_watch_on_every_owner_kind() -> None:
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in _documents()["ClusterRole"]["rules"][1:]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    wanted = {(r.group_version.rpartition("/")[0], r.value): {"list", "watch"} for r in Resource}
    assert granted == wanted

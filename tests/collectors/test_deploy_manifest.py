"""The collector as the Helm chart renders it (`deploy/helm/herald`) agrees with the code: settings
it sets exist, probes hit the endpoints the collector serves, its cluster file parses, and its
ClusterRole grants list/watch on exactly the kinds the collector reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.config import parse_cluster_file
from collectors.owners import Resource
from herald_dev.helm import default_objects, render, the_one

SETTINGS_DOC = Path(__file__).resolve().parents[2] / "docs/settings.md"
LEASE_SETTINGS = frozenset({"HERALD_LEASE_NAMESPACE", "HERALD_LEASE_HOLDER"})
"""What a replica needs to share the clusters: where the Leases are, and who it is."""


def _container() -> dict[str, Any]:
    deployment = the_one(default_objects(), "Deployment", "collector")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_every_variable_the_chart_sets_is_a_documented_setting() -> None:
    documented = SETTINGS_DOC.read_text()
    for variable in _container()["env"]:
        name = variable["name"]
        assert f"`{name}`" in documented, name


def test_probes_use_the_collectors_health_endpoints() -> None:
    container = _container()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_no_replica_count_is_kept_by_hand() -> None:
    """Replicas share the clusters through Leases: scaling the Deployment is all it takes."""
    names = {e["name"] for e in _container()["env"]}
    assert not names & {"HERALD_REPLICA_COUNT", "HERALD_REPLICA_INDEX"}
    assert names >= LEASE_SETTINGS


def test_the_default_cluster_file_parses() -> None:
    configmap = the_one(default_objects(), "ConfigMap", "collector")
    specs = parse_cluster_file(configmap["data"]["clusters.yaml"], source="ConfigMap")
    assert [s.name for s in specs] == ["local"]


def test_a_cluster_file_given_as_values_parses() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy/helm/herald/ci/everything-values.yaml"
    configmap = the_one(render(values_files=[example]), "ConfigMap", "collector")
    specs = parse_cluster_file(configmap["data"]["clusters.yaml"], source="ConfigMap")
    assert [s.name for s in specs] == ["local", "prod-eu"]


def test_rbac_allows_listing_and_watching_events() -> None:
    rule = the_one(default_objects(), "ClusterRole", "collector")["rules"][0]
    assert rule["resources"] == ["events"]
    assert set(rule["verbs"]) == {"list", "watch"}


def test_rbac_grows_only_by_list_and_watch_on_every_owner_kind() -> None:
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in the_one(default_objects(), "ClusterRole", "collector")["rules"][1:]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    wanted = {(r.group_version.rpartition("/")[0], r.value): {"list", "watch"} for r in Resource}
    assert granted == wanted

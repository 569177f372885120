from __future__ import annotations

from pathlib import Path

import pytest

from collectors.config import ClusterSpec, ConfigError, parse_cluster_file
from collectors.filters import Selection

GOOD = """
clusters:
  - name: prod-eu
    kubeconfig: /etc/herald/prod-eu.yaml
    context: prod
    namespaces: [billing, shop]
    include: {kinds: [Rollout, Application]}
    exclude: {reasons: [ScalingReplicaSet]}
  - name: local
    in_cluster: true
  - name: old
    kubeconfig: /etc/herald/old.yaml
    enabled: false
"""


def test_a_cluster_file_is_parsed_with_its_defaults() -> None:
    prod, local, old = parse_cluster_file(GOOD, source="clusters.yaml")
    assert prod.kubeconfig == Path("/etc/herald/prod-eu.yaml")
    assert prod.scopes == ("billing", "shop")
    assert prod.filter.include == Selection(kinds=frozenset({"Rollout", "Application"}))
    assert prod.filter.exclude.reasons == frozenset({"ScalingReplicaSet"})
    assert local == ClusterSpec(name="local", kubeconfig=None)
    assert local.scopes == (None,)
    assert not old.enabled


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        pytest.param("clusters: [", "not YAML", id="not-yaml"),
        pytest.param("- a\n- b\n", "'clusters' list", id="no-clusters-key"),
        pytest.param("clusters:\n  - kubeconfig: /k\n", r"clusters\[0\]: 'name'", id="no-name"),
        pytest.param(
            "clusters:\n  - {name: a/b, in_cluster: true}\n", "'name'", id="slash-in-name"
        ),
        pytest.param(
            "clusters:\n  - {name: a}\n",
            "exactly one of 'kubeconfig' and 'in_cluster",
            id="no-source",
        ),
        pytest.param(
            "clusters:\n  - {name: a, in_cluster: true, kubeconfig: /k}\n",
            "exactly one",
            id="two-sources",
        ),
        pytest.param(
            "clusters:\n  - {name: a, in_cluster: true, namespace: x}\n", "unknown field", id="typo"
        ),
        pytest.param(
            "clusters:\n  - {name: a, in_cluster: true, namespaces: billing}\n",
            "'namespaces' must be a list",
            id="namespaces-not-list",
        ),
        pytest.param(
            "clusters:\n  - {name: a, in_cluster: true, include: {kind: [X]}}\n",
            "'include'",
            id="bad-include",
        ),
        pytest.param(
            "clusters:\n  - {name: a, in_cluster: true}\n  - {name: a, in_cluster: true}\n",
            "unique: a",
            id="duplicate",
        ),
        pytest.param(
            "clusters:\n  - {name: a, in_cluster: true, enabled: 'no'}\n",
            "'enabled'",
            id="enabled-not-bool",
        ),
    ],
)
def test_a_bad_cluster_file_is_refused_naming_the_problem(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_cluster_file(text, source="clusters.yaml")


def test_a_cluster_can_be_disabled_without_removing_it() -> None:
    specs = parse_cluster_file(GOOD, source="c")
    assert [s.name for s in specs if not s.enabled] == ["old"]

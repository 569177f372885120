"""The Kubernetes manifests of processors and dispatchers agree with the code: every variable they
set is a documented setting, the commands are the services' entry points, and the metrics ports
match what the pods announce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatchers.cli import parser

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DOC = ROOT / "docs/settings.md"


def _documents(name: str) -> dict[str, dict[str, Any]]:
    path = ROOT / "deploy/kubernetes" / name
    return {d["kind"]: d for d in yaml.safe_load_all(path.read_text())}


def _containers(name: str) -> list[dict[str, Any]]:
    containers = []
    for document in _documents(name).values():
        spec = document.get("spec", {}).get("template", {}).get("spec", {})
        containers += spec.get("containers", [])
    return containers


@pytest.mark.parametrize("name", ["processors.yaml", "dispatchers.yaml"])
def test_every_variable_set_is_a_documented_setting(name: str) -> None:
    documented = SETTINGS_DOC.read_text()
    for container in _containers(name):
        for variable in container["env"]:
            assert f"`{variable['name']}`" in documented, variable["name"]


@pytest.mark.parametrize(
    ("name", "module", "port"),
    [("processors.yaml", "processors", 9102), ("dispatchers.yaml", "dispatchers", 9103)],
)
def test_the_services_run_their_entry_point_and_expose_metrics(
    name: str, module: str, port: int
) -> None:
    workload = next(
        d for d in _documents(name).values() if d["kind"] in ("StatefulSet", "Deployment")
    )
    [container] = workload["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", module]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HERALD_METRICS_PORT"] == str(port)
    assert workload["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(
        port
    )


@pytest.mark.parametrize("name", ["processors.yaml", "dispatchers.yaml"])
def test_probes_use_the_services_health_endpoints_on_the_metrics_port(name: str) -> None:
    workload = next(
        d for d in _documents(name).values() if d["kind"] in ("StatefulSet", "Deployment")
    )
    [container] = workload["spec"]["template"]["spec"]["containers"]
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HERALD_METRICS_HOST"] == "0.0.0.0"


def test_the_migration_job_runs_a_real_dispatcher_command() -> None:
    [container] = _documents("dispatchers.yaml")["Job"]["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:3] == ["python", "-m", "dispatchers"]
    assert parser().parse_args(command[3:]).command == "migrate"


def test_the_processors_rule_packs_configmap_is_mounted_where_the_rule_dir_setting_points(
    tmp_path: Path,
) -> None:
    from processors.packs import load_catalogue

    documents = _documents("processors.yaml")
    [container] = documents["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "rule-packs"]
    assert mount["mountPath"] == env["HERALD_PROCESSOR_RULE_DIR"]
    [volume] = [
        v
        for v in documents["StatefulSet"]["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "rule-packs"
    ]
    configmap = documents["ConfigMap"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    for key, text in (configmap.get("data") or {}).items():  # every pack shipped there loads
        (tmp_path / key).write_text(text)
    load_catalogue(directory=tmp_path)


@pytest.mark.parametrize("name", ["collectors.yaml", "processors.yaml", "dispatchers.yaml"])
def test_no_configmap_or_secret_is_mounted_by_subpath(name: str) -> None:
    """Kubernetes never updates a subPath mount, and the collector re-reads its cluster file."""
    for container in _containers(name):
        for mount in container.get("volumeMounts", []):
            assert "subPath" not in mount, (name, mount)


def test_the_collectors_cluster_file_is_read_from_its_mounted_configmap() -> None:
    [container] = _containers("collectors.yaml")
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "clusters"]
    path = Path(env["HERALD_CLUSTERS_FILE"])
    assert path.parent == Path(mount["mountPath"])
    configmap = _documents("collectors.yaml")["ConfigMap"]
    assert path.name in configmap["data"]

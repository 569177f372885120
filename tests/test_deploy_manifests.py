"""What the Helm chart renders (`deploy/helm/herald`, default values) agrees with the code: every
variable it sets is a documented setting, the commands are the services' entry points, and the
metrics ports match what the pods announce. The chart's own checks: tests/deploy/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dispatchers.cli import parser
from herald_dev.helm import component, default_objects, the_one

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_DOC = ROOT / "docs/settings.md"


def _containers(of: str) -> list[dict[str, Any]]:
    """The containers of a component's pods: collector, processor, dispatcher, migrate, topics."""
    containers: list[dict[str, Any]] = []
    for document in default_objects():
        if document["kind"] in ("Deployment", "Job") and component(document) == of:
            containers += document["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize("of", ["collector", "processor", "dispatcher", "migrate", "topics"])
def test_every_variable_set_is_a_documented_setting(of: str) -> None:
    documented = SETTINGS_DOC.read_text()
    containers = _containers(of)
    assert containers
    for container in containers:
        for variable in container["env"]:
            name = variable["name"]
            assert f"`{name}`" in documented, name


@pytest.mark.parametrize(
    ("of", "module", "port"),
    [
        ("collector", "collectors", 9101),
        ("processor", "processors", 9102),
        ("dispatcher", "dispatchers", 9103),
    ],
)
def test_the_services_run_their_entry_point_and_expose_metrics(
    of: str, module: str, port: int
) -> None:
    [container] = _containers(of)
    assert container["command"] == ["python", "-m", module]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HERALD_METRICS_PORT"] == str(port)
    assert container["ports"] == [{"name": "metrics", "containerPort": port}]
    template = the_one(default_objects(), "Deployment", of)["spec"]["template"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)


@pytest.mark.parametrize("of", ["collector", "processor", "dispatcher"])
def test_probes_use_the_services_health_endpoints_on_the_metrics_port(of: str) -> None:
    [container] = _containers(of)
    for probe, path in (
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "metrics"}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HERALD_METRICS_HOST"] == "0.0.0.0"


def test_the_migration_job_runs_a_real_dispatcher_command() -> None:
    [container] = _containers("migrate")
    command = container["command"]
    assert command[:3] == ["python", "-m", "dispatchers"]
    assert parser().parse_args(command[3:]).command == "migrate"


def test_the_processors_rule_packs_configmap_is_mounted_where_the_rule_dir_setting_points(
    tmp_path: Path,
) -> None:
    from processors.packs import load_catalogue

    deployment = the_one(default_objects(), "Deployment", "processor")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "rule-packs"]
    assert mount["mountPath"] == env["HERALD_PROCESSOR_RULE_DIR"]
    [volume] = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "rule-packs"
    ]
    configmap = the_one(default_objects(), "ConfigMap", "processor")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    for key, text in (configmap.get("data") or {}).items():  # every pack shipped there loads
        (tmp_path / key).write_text(text)
    load_catalogue(directory=tmp_path)


def test_the_collectors_cluster_file_is_read_from_its_configmap_mounted_as_a_directory() -> None:
    """Kubernetes updates a mounted ConfigMap only as a directory (never a subPath), and the
    collector re-reads its cluster file."""
    deployment = the_one(default_objects(), "Deployment", "collector")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "clusters"]
    assert "subPath" not in mount
    path = Path(env["HERALD_CLUSTERS_FILE"])
    assert path.parent == Path(mount["mountPath"])
    [volume] = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "clusters"
    ]
    configmap = the_one(default_objects(), "ConfigMap", "collector")
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert path.name in configmap["data"]

"""The Helm chart (`deploy/helm/herald`), the one source of Herald's Kubernetes objects: it lints,
renders, and what it renders is valid Kubernetes and least privilege. Rendered once per values set:
the defaults, and `ci/everything-values.yaml` (every option on). The pods are admitted under the
restricted Pod Security profile by a real API server in tests/realkube/test_pod_security.py.

Validity: every object of a built-in kind against the Kubernetes 1.37 JSON schemas
(`kubernetes-validate`, strict: an unknown or misspelt field fails). The Prometheus Operator's
ServiceMonitor and PrometheusRule and Strimzi's KafkaTopic have no schema there (they are CRDs):
for them the tests check what their operators read (the fields of their v1 / v1beta2 specs that the
chart sets, the selectors against the Services, the rule groups against the alerts file, the topic
names and settings against the values)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from collectors.settings import CollectorSettings
from dispatchers.settings import DispatcherSettings
from herald_dev.helm import (
    CHART,
    KUBERNETES_VERSION,
    NAMESPACE,
    HelmError,
    component,
    default_objects,
    helm,
    render,
    the_one,
)
from herald_runtime import setting_names
from herald_runtime.topics import strimzi
from herald_runtime.topics.plan import TopicSettings, herald_topics
from processors.settings import ProcessorSettings

EVERYTHING = CHART / "ci" / "everything-values.yaml"
VALUES = CHART / "values.yaml"
SERVICES = ("collector", "processor", "dispatcher")
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "KafkaTopic"}
Objects = tuple[dict[str, Any], ...]


@pytest.fixture(scope="module")
def defaults() -> Objects:
    return default_objects()


@pytest.fixture(scope="module")
def everything() -> Objects:
    return tuple(render(values_files=[EVERYTHING]))


@pytest.fixture(scope="module")
def everything_with_the_job() -> Objects:
    """Every option, with the topics Job making the topics instead of Strimzi (not both)."""
    return tuple(
        render(
            values_files=[EVERYTHING],
            set_values=["topics.strimzi.enabled=false", "topics.job.enabled=true"],
        )
    )


@pytest.fixture(scope="module", params=["defaults", "everything"])
def rendered(request: pytest.FixtureRequest) -> Objects:
    """Each values set in turn."""
    objects: Objects = request.getfixturevalue(request.param)
    return objects


def _pod_templates(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for document in objects:
        if document["kind"] in ("Deployment", "Job"):
            yield f"{document['kind']}/{document['metadata']['name']}", document["spec"]["template"]


def _containers(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, template in _pod_templates(objects):
        for container in template["spec"]["containers"] + template["spec"].get(
            "initContainers", []
        ):
            yield f"{where}:{container['name']}", container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container["env"]}


# -- Helm's own checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [None, EVERYTHING], ids=["defaults", "everything"])
def test_helm_lint_passes(values: Path | None) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBERNETES_VERSION]
    done = helm(*args, *(["--values", str(values)] if values else []))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("assignment", "named"),
    [
        pytest.param("kafka.bootstrap=kafka", "/kafka/bootstrap", id="bootstrap-without-port"),
        pytest.param("logFormat=xml", "/logFormat", id="log-format"),
        pytest.param("logLevel=loud", "/logLevel", id="log-level"),
        pytest.param("collector.replicas=-1", "/collector/replicas", id="negative-replicas"),
        pytest.param("topics.raw=has space", "/topics/raw", id="topic-name"),
        pytest.param("dispatcher.database.url=postgres://u:p@db/h", "'url'", id="plain-db-url"),
        pytest.param(
            "dispatcher.env.HERALD_SECRETS_KEYS=k:AAAA", "HERALD_SECRETS_KEYS", id="plain-keys"
        ),
        pytest.param("collector.resources=null", "resources", id="no-resources"),
        pytest.param(
            "topics.strimzi.enabled=true", "/topics/strimzi/cluster", id="strimzi-cluster"
        ),
        pytest.param("collector.env.HERALD_REPLICA_COUNT=2", "HERALD_REPLICA_COUNT", id="count"),
        pytest.param(
            "dispatcher.env.HERALD_KAFKA_BOOTSTRAP=other:9092",
            "HERALD_KAFKA_BOOTSTRAP",
            id="env-bootstrap",
        ),
        pytest.param("processor.env.HERALD_RAW_TOPIC=other", "HERALD_RAW_TOPIC", id="env-topic"),
    ],
)
def test_a_bad_value_fails_lint_and_template_naming_it(assignment: str, named: str) -> None:
    done = helm("lint", str(CHART), "--set", assignment)
    assert done.returncode != 0
    assert named in done.stdout + done.stderr
    with pytest.raises(HelmError, match=named.replace("/", "\\/")):
        render(set_values=[assignment])


# -- validity ---------------------------------------------------------------------------------------


def test_every_built_in_kind_validates_against_the_kubernetes_schemas(rendered: Objects) -> None:
    without_schema = set()
    for document in rendered:
        where = f"{document['kind']}/{document['metadata']['name']}"
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            without_schema.add(document["kind"])
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{where}: {e.message} at {'.'.join(map(str, e.absolute_path))}")
    assert without_schema <= CRD_KINDS  # a misspelt apiVersion of a built-in kind is no CRD


def test_the_schema_check_refuses_a_misspelt_field(defaults: Objects) -> None:
    """The validation above is strict: a field Kubernetes does not know fails it."""
    deployment = json.loads(json.dumps(the_one(defaults, "Deployment", "collector")))
    deployment["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_every_workload_selects_its_own_pods_and_nothing_else(rendered: Objects) -> None:
    deployments = [d for d in rendered if d["kind"] == "Deployment"]
    assert sorted(component(d) or "" for d in deployments) == sorted(SERVICES)
    for deployment in deployments:
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        # A selector is immutable: nothing in it may change from one release to the next.
        assert not selector.keys() & {"helm.sh/chart", "app.kubernetes.io/version"}
        for other in deployments:
            if other is not deployment:
                other_labels = other["spec"]["template"]["metadata"]["labels"]
                assert not selector.items() <= other_labels.items()


def test_every_object_is_in_the_release_namespace_unless_cluster_scoped(
    rendered: Objects,
) -> None:
    for document in rendered:
        if document["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            assert "namespace" not in document["metadata"]
        else:
            assert document["metadata"]["namespace"] == NAMESPACE, document["metadata"]["name"]


# -- least privilege --------------------------------------------------------------------------------


def test_the_collectors_cluster_role_only_lists_and_watches(rendered: Objects) -> None:
    [role] = [d for d in rendered if d["kind"] == "ClusterRole"]
    assert {verb for rule in role["rules"] for verb in rule["verbs"]} == {"list", "watch"}
    assert {r for rule in role["rules"] for r in rule["resources"]} >= {"events"}


def test_without_owner_resolution_the_collector_lists_and_watches_events_only() -> None:
    objects = render(set_values=["collector.ownerResolution=false"])
    role = the_one(objects, "ClusterRole", "collector")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]}
    ]
    container = the_one(objects, "Deployment", "collector")["spec"]["template"]["spec"]
    assert _env(container["containers"][0])["HERALD_OWNER_RESOLUTION"]["value"] == "false"


def test_the_collector_holds_and_deletes_leases_only_in_its_namespace(
    rendered: Objects,
) -> None:
    role = the_one(rendered, "Role", "collector")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update", "delete"],
        }
    ]
    account = the_one(rendered, "Deployment", "collector")["spec"]["template"]["spec"][
        "serviceAccountName"
    ]
    for kind, role_kind in (("RoleBinding", "Role"), ("ClusterRoleBinding", "ClusterRole")):
        binding = the_one(rendered, kind, "collector")
        assert binding["roleRef"]["kind"] == role_kind
        assert binding["roleRef"]["name"] == the_one(rendered, role_kind)["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


def test_nothing_but_the_collector_gets_rbac_or_a_token(rendered: Objects) -> None:
    rbac = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    assert {component(d) for d in rendered if d["kind"] in rbac} == {"collector"}
    for where, template in _pod_templates(rendered):
        spec = template["spec"]
        if where.startswith("Deployment/") and component(template) == "collector":
            assert spec["automountServiceAccountToken"] is True
        else:
            assert spec["automountServiceAccountToken"] is False, where
    for account in (d for d in rendered if d["kind"] == "ServiceAccount"):
        if component(account) != "collector":
            assert account["automountServiceAccountToken"] is False


def test_secrets_come_from_existing_secrets_never_from_values(rendered: Objects) -> None:
    wanted = {"HERALD_DATABASE_URL": ("herald-database", "url")}
    wanted["HERALD_SECRETS_KEYS"] = ("herald-secrets-keys", "keys")
    seen = set()
    for where, container in _containers(rendered):
        for name, entry in _env(container).items():
            if name in wanted:
                assert "value" not in entry, where
                ref = entry["valueFrom"]["secretKeyRef"]
                assert (ref["name"], ref["key"]) == wanted[name], where
                seen.add((where, name))
    assert {name for _, name in seen} == set(wanted)
    assert not [d for d in rendered if d["kind"] == "Secret"]


# -- pods -------------------------------------------------------------------------------------------


def test_every_container_has_cpu_and_memory_requests_and_a_memory_limit(
    rendered: Objects,
) -> None:
    for where, container in _containers(rendered):
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys(), where
        assert "memory" in resources["limits"], where


def test_every_pod_and_container_has_the_restricted_security_context(rendered: Objects) -> None:
    """What the restricted profile requires, set on every pod (admission: tests/realkube)."""
    for where, template in _pod_templates(rendered):
        pod = template["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in template["spec"]["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where


def test_no_volume_is_mounted_by_subpath(rendered: Objects) -> None:
    """Kubernetes never updates a subPath mount, and the collector re-reads its cluster file."""
    for where, container in _containers(rendered):
        for mount in container.get("volumeMounts", []):
            assert "subPath" not in mount, (where, mount)
            assert "subPathExpr" not in mount, (where, mount)


def test_the_collector_is_a_deployment_sharing_clusters_through_leases(rendered: Objects) -> None:
    assert not [d for d in rendered if d["kind"] == "StatefulSet"]
    deployment = the_one(rendered, "Deployment", "collector")
    env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
    assert env["HERALD_LEASE_NAMESPACE"]["valueFrom"] == {
        "fieldRef": {"fieldPath": "metadata.namespace"}
    }
    assert env["HERALD_LEASE_HOLDER"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    # Its own Lease group: the Deployment's name, so two releases in one namespace never share.
    assert env["HERALD_LEASE_GROUP"]["value"] == deployment["metadata"]["name"]
    assert "HERALD_REPLICA_COUNT" not in env
    assert "HERALD_REPLICA_INDEX" not in env


def test_the_image_is_one_value_for_every_container(defaults: Objects, everything: Objects) -> None:
    assert {c["image"] for _, c in _containers(defaults)} == {"herald:0.1.0"}
    digest = "sha256:" + "0123456789abcdef" * 4
    assert {c["image"] for _, c in _containers(everything)} == {
        f"registry.example.com/herald:0.1.0@{digest}"
    }


# -- hooks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("job", ["migrate", "topics"])
def test_the_jobs_are_hooks_that_run_again_on_every_upgrade(defaults: Objects, job: str) -> None:
    annotations = the_one(defaults, "Job", job)["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert (
        set(annotations["helm.sh/hook-delete-policy"].split(","))
        == {
            "before-hook-creation",  # the previous run's Job goes first: the same name takes the new image
            "hook-succeeded",
        }
    )


def test_the_topics_exist_before_the_migration_runs(defaults: Objects) -> None:
    def weight(job: str) -> int:
        return int(the_one(defaults, "Job", job)["metadata"]["annotations"]["helm.sh/hook-weight"])

    assert weight("topics") < weight("migrate")


def test_the_topics_job_ensures_the_topics_the_services_use(
    everything_with_the_job: Objects,
) -> None:
    everything = everything_with_the_job
    [container] = the_one(everything, "Job", "topics")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == [
        "python",
        "-m",
        "herald_runtime.topics",
        "ensure",
        "--unfixable",
        "warn",
        "--processor-topics",
    ]
    env = {name: entry["value"] for name, entry in _env(container).items()}
    assert env["HERALD_TOPIC_PARTITIONS"] == "12"
    assert env["HERALD_TOPIC_REPLICATION_FACTOR"] == "3"
    assert env["HERALD_TOPIC_MIN_INSYNC_REPLICAS"] == "2"
    assert env["HERALD_RAW_RETENTION_MS"] == "-1"
    assert env["HERALD_DOMAIN_RETENTION_MS"] == "604800000"  # numbers as integers, not 6.048e+08
    for service in SERVICES:
        [used] = the_one(everything, "Deployment", service)["spec"]["template"]["spec"][
            "containers"
        ]
        for name, entry in _env(used).items():
            if name.endswith("_TOPIC") or name in (
                "HERALD_KAFKA_BOOTSTRAP",
                "HERALD_KAFKA_MESSAGE_MAX_BYTES",  # the raw topic takes the collector's largest
                "HERALD_PROCESSOR_APP_ID",
                "HERALD_PROCESSOR_REPLICATION_FACTOR",
            ):
                assert env[name] == entry["value"], (service, name)


def test_a_min_insync_above_the_replication_fails_naming_both() -> None:
    with pytest.raises(HelmError, match=r"topics\.minInsyncReplicas .* topics\.replicationFactor"):
        render(set_values=["topics.minInsyncReplicas=4", "topics.replicationFactor=3"])


def test_strimzi_and_the_topics_job_together_fail_naming_both() -> None:
    """Both would manage the same topics: Strimzi's operator reverts what the Job corrects."""
    with pytest.raises(HelmError, match=r"topics\.strimzi\.enabled and topics\.job\.enabled"):
        render(set_values=["topics.strimzi.enabled=true", "topics.strimzi.cluster=kafka"])
    objects = render(
        set_values=[
            "topics.strimzi.enabled=true",
            "topics.strimzi.cluster=kafka",
            "topics.job.enabled=false",
        ]
    )
    assert [d for d in objects if d["kind"] == "KafkaTopic"]
    assert not [d for d in objects if d["kind"] == "Job" and component(d) == "topics"]


def test_every_variable_the_chart_sets_is_refused_in_a_services_env(rendered: Objects) -> None:
    """A name in `env` the chart also sets would make two entries, the services' differing from the
    topics Job's. HERALD_KAFKA_MESSAGE_MAX_BYTES is the one the chart reads from `collector.env`."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    refused = set(schema["definitions"]["env"]["propertyNames"]["not"]["enum"])
    given = {"HERALD_KAFKA_MESSAGE_MAX_BYTES"}  # the env maps' names, in either values set
    for values in (yaml.safe_load(EVERYTHING.read_text()), yaml.safe_load(VALUES.read_text())):
        for service in SERVICES:
            given |= set(values[service].get("env") or {})
    for document in rendered:
        if document["kind"] in ("Deployment", "Job"):
            for container in document["spec"]["template"]["spec"]["containers"]:
                set_by_chart = _env(container).keys() - given
                assert set_by_chart <= refused, (document["metadata"]["name"], set_by_chart)
    assert not given & refused


def test_the_topics_job_can_be_turned_off() -> None:
    objects = render(set_values=["topics.job.enabled=false"])
    assert not [d for d in objects if component(d) == "topics"]


# -- the rendered env is what the services' settings accept ----------------------------------------


def _resolved_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's env as the pod would see it, Secrets and the downward API filled in."""
    key = base64.b64encode(bytes(32)).decode()
    secrets = {"HERALD_DATABASE_URL": "postgresql://herald@db:5432/herald"}
    secrets["HERALD_SECRETS_KEYS"] = f"k1:{key}"
    env = {}
    for name, entry in _env(container).items():
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            env[name] = secrets[name]
        else:
            env[name] = "from-the-downward-api"
    return env


def test_the_services_accept_the_env_the_chart_gives_them(
    rendered: Objects, tmp_path: Path
) -> None:
    def container(service: str) -> dict[str, Any]:
        [found] = the_one(rendered, "Deployment", service)["spec"]["template"]["spec"]["containers"]
        return found

    collector = _resolved_env(container("collector"))
    clusters = the_one(rendered, "ConfigMap", "collector")["data"]["clusters.yaml"]
    (tmp_path / "clusters.yaml").write_text(clusters)
    collector["HERALD_CLUSTERS_FILE"] = str(tmp_path / "clusters.yaml")
    assert CollectorSettings.from_env(collector).kafka_bootstrap

    processor = _resolved_env(container("processor"))
    packs = tmp_path / "packs"
    packs.mkdir()
    for key, text in (the_one(rendered, "ConfigMap", "processor").get("data") or {}).items():
        (packs / key).write_text(text)
    processor["HERALD_PROCESSOR_RULE_DIR"] = str(packs)
    assert ProcessorSettings.from_env(processor).kafka_bootstrap

    dispatcher = DispatcherSettings.from_env(_resolved_env(container("dispatcher")))
    assert dispatcher.database_url.startswith("postgresql://")


def test_every_variable_set_is_one_its_program_reads(rendered: Objects) -> None:
    """A name the program does not read is warned about at its start as unknown (and is useless)."""
    reads = {
        "collector": setting_names.COLLECTOR,
        "processor": setting_names.PROCESSOR,
        "dispatcher": setting_names.DISPATCHER,
        "migrate": setting_names.DISPATCHER,
        "topics": setting_names.TOPICS_COMMAND,
    }
    for document in rendered:
        if document["kind"] in ("Deployment", "Job"):
            for container in document["spec"]["template"]["spec"]["containers"]:
                unread = _env(container).keys() - reads[component(document) or ""]
                assert not unread, (document["metadata"]["name"], unread)


# -- networking, disruptions, metrics ----------------------------------------------------------------


def _selects(selector: dict[str, str], template: dict[str, Any]) -> bool:
    return selector.items() <= template["metadata"]["labels"].items()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_a_disruption_budget_that_unready_pods_never_block(
    rendered: Objects, service: str
) -> None:
    budget = the_one(rendered, "PodDisruptionBudget", service)
    template = the_one(rendered, "Deployment", service)["spec"]["template"]
    assert _selects(budget["spec"]["selector"]["matchLabels"], template)
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_admits_ingress_only_to_its_metrics_port(
    defaults: Objects, everything: Objects, service: str
) -> None:
    for objects in (defaults, everything):
        policy = the_one(objects, "NetworkPolicy", service)
        template = the_one(objects, "Deployment", service)["spec"]["template"]
        assert _selects(policy["spec"]["podSelector"]["matchLabels"], template)
        [rule] = policy["spec"]["ingress"]
        assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
        assert rule["from"]
    # Egress is open unless rules are given; then only those.
    assert the_one(defaults, "NetworkPolicy", service)["spec"]["policyTypes"] == ["Ingress"]
    restricted = the_one(everything, "NetworkPolicy", service)["spec"]
    assert restricted["policyTypes"] == ["Ingress", "Egress"]
    assert restricted["egress"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_metrics_service_reaches_unready_pods_too(rendered: Objects, service: str) -> None:
    """A collector unready because one cluster is gone still reports which cluster."""
    metrics = the_one(rendered, "Service", service)
    template = the_one(rendered, "Deployment", service)["spec"]["template"]
    assert _selects(metrics["spec"]["selector"], template)
    assert metrics["spec"]["publishNotReadyAddresses"] is True
    [port] = metrics["spec"]["ports"]
    [container] = template["spec"]["containers"]
    [declared] = container["ports"]
    assert port["targetPort"] == declared["name"] == "metrics"
    assert port["port"] == declared["containerPort"]


def test_the_optional_monitoring_objects_are_off_by_default(defaults: Objects) -> None:
    assert not {d["kind"] for d in defaults} & CRD_KINDS
    assert [d["metadata"]["name"] for d in defaults if d["kind"] == "ConfigMap"] == [
        "herald-collector-clusters",
        "herald-processor-rule-packs",
    ]


def test_the_servicemonitor_scrapes_the_metrics_port_of_every_service(
    everything: Objects,
) -> None:
    monitor = the_one(everything, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        d
        for d in everything
        if d["kind"] == "Service" and selector.items() <= d["metadata"]["labels"].items()
    ]
    assert sorted(component(d) or "" for d in scraped) == sorted(SERVICES)
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert set(monitor["spec"]) == {"selector", "namespaceSelector", "endpoints"}


def test_the_prometheusrule_carries_the_alerts_file(everything: Objects) -> None:
    rule = the_one(everything, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = yaml.safe_load((CHART / "files" / "herald-alerts.yaml").read_text())
    assert rule["spec"] == {"groups": alerts["groups"]}
    for group in rule["spec"]["groups"]:  # what the operator's PrometheusRule v1 spec requires
        assert group["name"]
        for item in group["rules"]:
            assert item["expr"]
            assert "alert" in item or "record" in item


def test_the_dashboard_configmap_is_the_dashboard_file_for_grafanas_sidecar(
    everything: Objects,
) -> None:
    dashboard = next(
        d for d in everything if d["kind"] == "ConfigMap" and "herald-dashboard.json" in d["data"]
    )
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "files" / "herald-dashboard.json").read_text())
    assert json.loads(dashboard["data"]["herald-dashboard.json"]) == shipped


def test_the_strimzi_topics_are_the_topics_the_services_use(everything: Objects) -> None:
    topics = [d for d in everything if d["kind"] == "KafkaTopic"]
    for topic in topics:
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "herald-kafka"
        assert topic["metadata"]["name"] == topic["spec"]["topicName"]  # a valid resource name
        assert set(topic["spec"]) == {"topicName", "partitions", "replicas", "config"}
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2
    by_name = {t["spec"]["topicName"]: t["spec"] for t in topics}
    assert sorted(by_name) == sorted(
        [
            "herald.kube-events.v1",
            "herald.deploy-events.v1",
            "herald.dead-letters.v1",
            "herald.collector-checkpoints.v1",
        ]
    )
    raw, domain = by_name["herald.kube-events.v1"], by_name["herald.deploy-events.v1"]
    assert raw["partitions"] == domain["partitions"] == 12
    assert raw["config"]["retention.ms"] == -1
    assert raw["config"]["max.message.bytes"] == 2_000_000  # the collector's largest record
    assert domain["config"]["retention.ms"] == 604_800_000
    checkpoints = by_name["herald.collector-checkpoints.v1"]
    assert checkpoints["partitions"] == 1
    assert checkpoints["config"]["cleanup.policy"] == "compact"
    assert by_name["herald.dead-letters.v1"]["partitions"] == 1


def test_the_topics_follow_the_topics_commands_plan(
    defaults: Objects, everything: Objects, everything_with_the_job: Objects
) -> None:
    """The Job's env is what `python -m herald_runtime.topics` accepts, and the KafkaTopics are what
    its `strimzi` command prints for that env (the same values rendered with the Job instead)."""
    for with_the_job, with_strimzi in ((defaults, defaults), (everything_with_the_job, everything)):
        job = the_one(with_the_job, "Job", "topics")
        [container] = job["spec"]["template"]["spec"]["containers"]
        settings = TopicSettings.from_env({e["name"]: e["value"] for e in container["env"]})
        wanted = {
            spec.name: strimzi.resource(spec, cluster="c", namespace=None)["spec"]
            for spec in herald_topics(settings)
        }
        rendered_topics = {
            d["spec"]["topicName"]: d["spec"] for d in with_strimzi if d["kind"] == "KafkaTopic"
        }
        if with_strimzi is everything:
            assert rendered_topics == wanted
        else:
            assert not rendered_topics

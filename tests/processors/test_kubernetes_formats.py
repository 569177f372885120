"""Every message format of the `kubernetes` pack, by the Kubernetes releases that emit it: one row
each, the test id naming the releases. Formats read from the emitting code (docs/catalogue.md,
"Kubernetes", has the table with sources); the Events are shaped as each emitter writes them:
core/v1 through client-go's legacy recorder (`source.component`, `reportingComponent` empty), the
kubelet's about a container naming it in `involvedObject.fieldPath`."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from herald_contracts import (
    SCHEMA_BASE_URI,
    AppRef,
    OwnerRef,
    Ownership,
    RawRecord,
    WatchType,
    encode_domain_event,
)
from processors.catalogue import Catalogue
from processors.converters import compile_field
from processors.interpreting import Outcome, interpret
from processors.packs import load_catalogue
from tests.support import validate

CATALOGUE: Catalogue = load_catalogue(builtin=("argo-rollouts", "argo-cd", "kubernetes"))

POD = {
    "kind": "Pod",
    "namespace": "shop",
    "name": "checkout-6f8b9c7d5-abcde",
    "uid": "0b6d2f9e-5c1a-4f5e-9d0a-7c3b2a1e9f80",
    "apiVersion": "v1",
    "resourceVersion": "48213",
}
POD_REF = "checkout-6f8b9c7d5-abcde_shop(0b6d2f9e-5c1a-4f5e-9d0a-7c3b2a1e9f80)"
DEPLOYMENT = {
    "kind": "Deployment",
    "namespace": "shop",
    "name": "checkout",
    "uid": "5d1f0c2a-8b3e-4a6f-9e7d-1c2b3a4d5e6f",
    "apiVersion": "apps/v1",
    "resourceVersion": "48100",
}
JOB = {
    "kind": "Job",
    "namespace": "shop",
    "name": "nightly-report",
    "uid": "7e2a1b3c-4d5e-6f70-8192-a3b4c5d6e7f8",
    "apiVersion": "batch/v1",
    "resourceVersion": "50011",
}
HPA = {
    "kind": "HorizontalPodAutoscaler",
    "namespace": "shop",
    "name": "checkout",
    "uid": "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
    "apiVersion": "autoscaling/v2",
    "resourceVersion": "50100",
}
# A Node's reference: `apiVersion: v1` (the node lifecycle controller; the kubelet in 1.37), none in
# older kubelets' (its uid the Node's name).
NODE = {"kind": "Node", "name": "worker-3", "uid": "worker-3", "apiVersion": "v1"}
KUBELET_NODE = {"kind": "Node", "name": "worker-3", "uid": "worker-3"}
IMAGE = "registry.example/shop/checkout:1.4.2"


def kube_event(
    involved: dict[str, Any],
    reason: str,
    message: str,
    *,
    component: str,
    event_type: str = "Normal",
    field_path: str | None = None,
    namespace: str | None = None,
    host: str | None = None,
) -> dict[str, Any]:
    """A core/v1 Event as client-go's legacy recorder (tools/record) writes it."""
    involved = dict(involved)
    if field_path is not None:
        involved["fieldPath"] = field_path
    source = {"component": component}
    if host is not None:
        source["host"] = host
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{involved['name']}.18a2b3c4d5e6f708",
            # A Node's Events go to `default` (the recorder's namespace for cluster objects).
            "namespace": namespace or involved.get("namespace") or "default",
            "uid": "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7",
            "resourceVersion": "50200",
            "creationTimestamp": "2026-11-30T08:14:27Z",
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": "2026-11-30T08:14:27Z",
        "lastTimestamp": "2026-11-30T08:14:27Z",
        "count": 1,
        "type": event_type,
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    }


def kubelet(
    reason: str, message: str, *, event_type: str = "Normal", container: str | None = "checkout"
) -> dict[str, Any]:
    path = f"spec.containers{{{container}}}" if container else None
    return kube_event(
        POD,
        reason,
        message,
        component="kubelet",
        event_type=event_type,
        field_path=path,
        host="worker-3",
    )


def as_events_v1(event: dict[str, Any]) -> dict[str, Any]:
    """The same Event as a writer of events.k8s.io/v1 leaves it, read through core/v1 (as the
    collector reads every Event): `reportingComponent` (the events API's `reportingController`)
    and `eventTime` set, `source` empty, no legacy timestamps or count."""
    written = copy.deepcopy(event)
    written["reportingComponent"] = written["source"].pop("component")
    written["reportingInstance"] = f"{written['reportingComponent']}-worker-3"
    written["source"] = {}
    written["eventTime"] = "2026-11-30T08:14:27.123456Z"
    written["firstTimestamp"] = written["lastTimestamp"] = None
    written.pop("count")
    return written


def run(event: dict[str, Any]) -> Outcome:
    raw = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-11-30T08:14:28Z",
        object=event,
    )
    return interpret(raw, last_n=None, catalogue=CATALOGUE)


def only(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [domain_event] = run(event).events
    validate("deploy-event.v1.schema.json", json.loads(encode_domain_event(domain_event)))
    # The data alone, against the derived schema its dataschema names.
    validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)
    return domain_event.type.removeprefix("dev.herald.kubernetes."), domain_event.data


# (releases, the Event, the type, the fields that must be so)
FORMATS: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    # kubelet: a container's crash-loop back-off (kuberuntime_manager.go doBackOff)
    (
        "1.37 (names since #113216)",
        kubelet(
            "BackOff",
            f"Back-off restarting failed container checkout in pod {POD_REF}",
            event_type="Warning",
        ),
        "container_restarting",
        {"container": "checkout"},
    ),
    (
        "before #113216 (1.25 and older) no names",
        kubelet("BackOff", "Back-off restarting failed container", event_type="Warning"),
        "container_restarting",
        {"container": "checkout"},
    ),
    (
        "#113216 (1.26) the container alone",
        kubelet(
            "BackOff",
            "Back-off restarting failed container migrate",
            event_type="Warning",
            container="other",
        ),
        "container_restarting",
        {"container": "migrate"},
    ),
    # kubelet: a probe's kill (kuberuntime_manager.go computePodActions, killContainer)
    (
        "1.37 liveness",
        kubelet("Killing", "Container checkout failed liveness probe, will be restarted"),
        "container_killed",
        {
            "container": "checkout",
            "probe": "liveness",
            "will_restart": True,
            "init_container": False,
        },
    ),
    (
        "1.37 liveness, restartPolicy Never",
        kubelet("Killing", "Container checkout failed liveness probe"),
        "container_killed",
        {"probe": "liveness", "will_restart": False},
    ),
    (
        "1.37 startup",
        kubelet("Killing", "Container checkout failed startup probe, will be restarted"),
        "container_killed",
        {"probe": "startup", "will_restart": True},
    ),
    (
        "1.28-1.37 sidecar liveness",
        kubelet(
            "Killing",
            "Init container proxy failed liveness probe, will be restarted",
            container=None,
        ),
        "container_killed",
        {"container": "proxy", "init_container": True, "probe": "liveness"},
    ),
    # kubelet: image pulls (images/image_manager.go EnsureImageExists)
    (
        "1.37 pull failed",
        kubelet(
            "Failed",
            f'Failed to pull image "{IMAGE}": rpc error: code = NotFound desc = failed to pull'
            f' and unpack image "{IMAGE}": not found',
            event_type="Warning",
        ),
        "image_pull_failed",
        {
            "failure": "ErrImagePull",
            "image": IMAGE,
            "container": "checkout",
            "error": f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": not found',
        },
    ),
    (
        "1.37 back-off",
        kubelet("BackOff", f'Back-off pulling image "{IMAGE}"'),
        "image_pull_failed",
        {"failure": "ImagePullBackOff", "image": IMAGE, "container": "checkout", "error": None},
    ),
    (
        "1.37 never pull",
        kubelet(
            "ErrImageNeverPull",
            f'Container image "{IMAGE}" is not present with pull policy of Never',
            event_type="Warning",
        ),
        "image_pull_failed",
        {"failure": "ErrImageNeverPull", "image": IMAGE, "error": None},
    ),
    (
        "1.37 inspect failed",
        kubelet(
            "InspectFailed",
            f'Failed to inspect image "{IMAGE}": rpc error: code = Unavailable',
            event_type="Warning",
        ),
        "image_pull_failed",
        {"failure": "ImageInspectError", "error": "rpc error: code = Unavailable"},
    ),
    (
        "1.37 invalid name",
        kubelet(
            "InspectFailed",
            'Failed to apply default image tag "Shop/Checkout": couldn\'t parse image name'
            ' "Shop/Checkout": invalid reference format: repository name must be lowercase',
            event_type="Warning",
        ),
        "image_pull_failed",
        {"failure": "InvalidImageName", "image": "Shop/Checkout"},
    ),
    # job-controller (job_controller.go recordJobFinished)
    (
        "1.37",
        kube_event(JOB, "Completed", "Job completed", component="job-controller"),
        "job_completed",
        {},
    ),
    (
        "1.37 backoff limit",
        kube_event(
            JOB,
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
            component="job-controller",
            event_type="Warning",
        ),
        "job_failed",
        {"detail": "Job has reached the specified backoff limit", "pod": None},
    ),
    (
        "1.37 deadline",
        kube_event(
            JOB,
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
            component="job-controller",
            event_type="Warning",
        ),
        "job_failed",
        {"detail": "Job was active longer than specified deadline"},
    ),
    (
        "1.26-1.37 pod failure policy, exit code",
        kube_event(
            JOB,
            "PodFailurePolicy",
            "Container main for pod shop/nightly-report-x7k2p failed with exit code 42 matching"
            " FailJob rule at index 0",
            component="job-controller",
            event_type="Warning",
        ),
        "job_failed",
        {"pod": "nightly-report-x7k2p", "container": "main", "exit_code": 42, "rule_index": 0},
    ),
    (
        "1.26-1.37 pod failure policy, condition",
        kube_event(
            JOB,
            "PodFailurePolicy",
            "Pod shop/nightly-report-x7k2p has condition DisruptionTarget matching FailJob rule"
            " at index 1",
            component="job-controller",
            event_type="Warning",
        ),
        "job_failed",
        {"pod": "nightly-report-x7k2p", "container": None, "exit_code": None, "rule_index": 1},
    ),
    (
        "1.28-1.37 max failed indexes",
        kube_event(
            JOB,
            "MaxFailedIndexesExceeded",
            "Job has exceeded the specified maximal number of failed indexes",
            component="job-controller",
            event_type="Warning",
        ),
        "job_failed",
        {"detail": "Job has exceeded the specified maximal number of failed indexes"},
    ),
    (
        "1.28-1.37 failed indexes",
        kube_event(
            JOB,
            "FailedIndexes",
            "Job has failed indexes",
            component="job-controller",
            event_type="Warning",
        ),
        "job_failed",
        {"detail": "Job has failed indexes"},
    ),
    # horizontal-pod-autoscaler (horizontal.go reconcileAutoscaler)
    (
        "1.37 metric",
        kube_event(
            HPA,
            "SuccessfulRescale",
            "New size: 5; reason: cpu resource utilization (percentage of request) above target",
            component="horizontal-pod-autoscaler",
        ),
        "hpa_rescaled",
        {
            "new_size": 5,
            "metric": "cpu resource utilization (percentage of request)",
            "rescale_reason": "cpu resource utilization (percentage of request) above target",
        },
    ),
    (
        "1.37 below target",
        kube_event(
            HPA,
            "SuccessfulRescale",
            "New size: 2; reason: All metrics below target",
            component="horizontal-pod-autoscaler",
        ),
        "hpa_rescaled",
        {"new_size": 2, "metric": None, "rescale_reason": "All metrics below target"},
    ),
    (
        "1.37 max replicas",
        kube_event(
            HPA,
            "SuccessfulRescale",
            "New size: 10; reason: Current number of replicas above Spec.MaxReplicas",
            component="horizontal-pod-autoscaler",
        ),
        "hpa_rescaled",
        {"new_size": 10, "metric": None},
    ),
    # deployment-controller (sync.go scaleReplicaSet, getNewReplicaSet)
    (
        "#101142-1.37 scale up",
        kube_event(
            DEPLOYMENT,
            "ScalingReplicaSet",
            "Scaled up replica set checkout-7d9f6c5b48 from 1 to 3",
            component="deployment-controller",
        ),
        "replica_set_scaled",
        {
            "replica_set": "checkout-7d9f6c5b48",
            "direction": "up",
            "from_replicas": 1,
            "to_replicas": 3,
        },
    ),
    (
        "#101142-1.37 scale down (a rollout, a rollout restart)",
        kube_event(
            DEPLOYMENT,
            "ScalingReplicaSet",
            "Scaled down replica set checkout-6f8b9c7d5 from 3 to 2",
            component="deployment-controller",
        ),
        "replica_set_scaled",
        {"direction": "down", "from_replicas": 3, "to_replicas": 2},
    ),
    (
        "#123430-1.37 new replica set",
        kube_event(
            DEPLOYMENT,
            "ScalingReplicaSet",
            "Scaled up replica set checkout-7d9f6c5b48 from 0 to 1",
            component="deployment-controller",
        ),
        "replica_set_scaled",
        {"from_replicas": 0, "to_replicas": 1},
    ),
    (
        "before #101142",
        kube_event(
            DEPLOYMENT,
            "ScalingReplicaSet",
            "Scaled down replica set checkout-6f8b9c7d5 to 0",
            component="deployment-controller",
        ),
        "replica_set_scaled",
        {"direction": "down", "from_replicas": None, "to_replicas": 0},
    ),
    # node-controller and kubelet: a Node not ready
    (
        "1.37 node-controller",
        kube_event(
            NODE,
            "NodeNotReady",
            "Node worker-3 status is now: NodeNotReady",
            component="node-controller",
        ),
        "node_not_ready",
        {"node": "worker-3"},
    ),
    (
        "1.37 kubelet",
        kube_event(
            KUBELET_NODE,
            "NodeNotReady",
            "Node worker-3 status is now: NodeNotReady",
            component="kubelet",
            host="worker-3",
        ),
        "node_not_ready",
        {"node": "worker-3"},
    ),
    (
        "1.37 a Pod of the Node",
        kube_event(
            POD,
            "NodeNotReady",
            "Node is not ready",
            component="node-controller",
            event_type="Warning",
        ),
        "node_not_ready",
        {"node": None},
    ),
    # node-problem-detector's kernel monitor: the kernel's OOM kill line (mm/oom_kill.c)
    (
        "npd, memory cgroup",
        kube_event(
            KUBELET_NODE,
            "OOMKilling",
            "Memory cgroup out of memory: Killed process 41234 (java) total-vm:4531200kB,"
            " anon-rss:1048576kB, file-rss:20480kB, shmem-rss:0kB, UID:1000 pgtables:2400kB"
            " oom_score_adj:-997",
            component="kernel-monitor",
            event_type="Warning",
            host="worker-3",
        ),
        "node_oom_kill",
        {"process": "java", "pid": 41234, "memory_cgroup": True},
    ),
    (
        "npd, the Node",
        kube_event(
            KUBELET_NODE,
            "OOMKilling",
            "Out of memory: Killed process 812 (node exporter) total-vm:731000kB,"
            " anon-rss:120000kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:400kB"
            " oom_score_adj:0",
            component="kernel-monitor",
            event_type="Warning",
            host="worker-3",
        ),
        "node_oom_kill",
        {"process": "node exporter", "pid": 812, "memory_cgroup": False},
    ),
    (
        "npd, oom_kill_allocating_task",
        kube_event(
            KUBELET_NODE,
            "OOMKilling",
            "Out of memory (oom_kill_allocating_task): Killed process 77 (sh) total-vm:1000kB,"
            " anon-rss:10kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:40kB oom_score_adj:0",
            component="kernel-monitor",
            event_type="Warning",
            host="worker-3",
        ),
        "node_oom_kill",
        {"process": "sh", "pid": 77, "memory_cgroup": False},
    ),
    (
        "npd, older kernels",
        kube_event(
            KUBELET_NODE,
            "OOMKilling",
            "Killed process 41234 (java) total-vm:4531200kB, anon-rss:1048576kB,"
            " file-rss:20480kB, shmem-rss:0kB",
            component="kernel-monitor",
            event_type="Warning",
            host="worker-3",
        ),
        "node_oom_kill",
        {"process": "java", "pid": 41234, "memory_cgroup": None},
    ),
    # kubelet: a Node-level OOM kill (oom/oom_watcher_linux.go)
    (
        "1.37",
        kube_event(
            KUBELET_NODE,
            "SystemOOM",
            "System OOM encountered, victim process: java, pid: 41234",
            component="kubelet",
            event_type="Warning",
            host="worker-3",
        ),
        "node_system_oom",
        {"process": "java", "pid": 41234},
    ),
    (
        "1.37 without the victim",
        kube_event(
            KUBELET_NODE,
            "SystemOOM",
            "System OOM encountered",
            component="kubelet",
            event_type="Warning",
            host="worker-3",
        ),
        "node_system_oom",
        {"process": None, "pid": None},
    ),
]

IDS = [f"{row[1]['involvedObject']['kind']}-{row[1]['reason']}-{row[0]}" for row in FORMATS]


@pytest.mark.parametrize(("releases", "event", "domain_type", "fields"), FORMATS, ids=IDS)
def test_kubernetes_formats_by_release(
    releases: str, event: dict[str, Any], domain_type: str, fields: dict[str, Any]
) -> None:
    got_type, data = only(event)
    assert got_type == domain_type, releases
    assert data["source_message_understood"] is True, releases
    assert {name: data[name] for name in fields} == fields


@pytest.mark.parametrize(("releases", "event", "domain_type", "fields"), FORMATS, ids=IDS)
def test_the_same_formats_written_through_events_k8s_io_v1_give_the_same(
    releases: str, event: dict[str, Any], domain_type: str, fields: dict[str, Any]
) -> None:
    """None of these emitters writes events.k8s.io/v1 today; should one move to it, its Events
    (emitting component in `reportingController`) are still read."""
    got_type, data = only(as_events_v1(event))
    assert got_type == domain_type, releases
    assert {name: data[name] for name in fields} == fields


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (kubelet("Killing", "Stopping container checkout"), "a deletion's kill"),
        (
            kubelet("Killing", "Container checkout definition changed, will be restarted"),
            "a spec change",
        ),
        (kubelet("Killing", "Container checkout resize requires restart"), "a resize"),
        (kubelet("Failed", "Error: ErrImagePull", event_type="Warning"), "the image's own came"),
        (kubelet("Failed", "Error: ImagePullBackOff", event_type="Warning"), "likewise"),
        (
            kubelet("Failed", "Error: CreateContainerConfigError", event_type="Warning"),
            "not covered",
        ),
        (
            kubelet("Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500"),
            "the kill is the event",
        ),
        (kubelet("Pulled", f'Container image "{IMAGE}" already present on machine'), "fine"),
        (kubelet("Started", "Started container checkout"), "fine"),
        (
            kube_event(JOB, "SuccessfulCreate", "Created pod: x", component="job-controller"),
            "not a transition",
        ),
        (
            kube_event(
                NODE, "NodeReady", "Node worker-3 status is now: NodeReady", component="kubelet"
            ),
            "not covered",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_known_formats_that_are_not_transitions_give_nothing_and_are_not_flagged(
    event: dict[str, Any], why: str
) -> None:
    outcome = run(event)
    assert (outcome.events, outcome.not_understood) == ((), None), why


@pytest.mark.parametrize(
    ("event", "why"),
    [
        (
            kube_event(
                POD,
                "BackOff",
                f"Back-off restarting failed container checkout in pod {POD_REF}",
                component="some-operator",
            ),
            "another component",
        ),
        (
            kube_event(
                {**DEPLOYMENT, "kind": "Rollout", "apiVersion": "argoproj.io/v1alpha1"},
                "ScalingReplicaSet",
                "Scaled up replica set checkout-7d9f6c5b48 from 1 to 3",
                component="rollouts-controller",
            ),
            "Argo Rollouts' own, on a Rollout",
        ),
        (
            kube_event(
                {**DEPLOYMENT, "kind": "StatefulSet"},
                "ScalingReplicaSet",
                "Scaled up replica set checkout-7d9f6c5b48 from 1 to 3",
                component="deployment-controller",
            ),
            "another kind",
        ),
        (
            kube_event(
                {**JOB, "apiVersion": "example.com/v1"},
                "Completed",
                "Job completed",
                component="job-controller",
            ),
            "another group's Job",
        ),
        (
            kube_event(
                NODE,
                "NodeNotReady",
                "Node worker-3 status is now: NodeNotReady",
                component="node-problem-detector",
            ),
            "another component",
        ),
        (
            kube_event(
                POD, "SystemOOM", "System OOM encountered", component="kubelet", host="worker-3"
            ),
            "a Pod, not a Node",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_near_misses_give_nothing(event: dict[str, Any], why: str) -> None:
    outcome = run(event)
    assert (outcome.events, outcome.not_understood) == ((), None), why


@pytest.mark.parametrize(
    ("event", "domain_type"),
    [
        (
            kubelet("BackOff", "Back-off restarting the failing container", event_type="Warning"),
            "container_restarting",
        ),
        (kubelet("BackOff", f'Back-off while pulling image "{IMAGE}"'), "image_pull_failed"),
        (
            kubelet("Killing", "Container checkout was killed: liveness probe failed"),
            "container_killed",
        ),
        (
            kubelet("Failed", f'Failed pulling image "{IMAGE}": x', event_type="Warning"),
            "image_pull_failed",
        ),
        (kube_event(JOB, "Completed", "Job finished", component="job-controller"), "job_completed"),
        (
            kube_event(
                HPA, "SuccessfulRescale", "Rescaled to 4", component="horizontal-pod-autoscaler"
            ),
            "hpa_rescaled",
        ),
    ],
)
def test_a_new_wording_still_gives_its_event_flagged(
    event: dict[str, Any], domain_type: str
) -> None:
    got_type, data = only(event)
    assert got_type == domain_type
    assert data["source_message_understood"] is False
    # A container is still named when the Event's fieldPath names it.
    if "container" in data and event["involvedObject"].get("fieldPath"):
        assert data["container"] == "checkout"


def test_the_domain_event_names_the_workload_and_the_application_the_collector_resolved() -> None:
    event = kubelet(
        "BackOff",
        f"Back-off restarting failed container checkout in pod {POD_REF}",
        event_type="Warning",
    )
    raw = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-11-30T08:14:28Z",
        object=event,
        ownership=Ownership(
            owners=(
                OwnerRef("ReplicaSet", "apps/v1", "checkout-6f8b9c7d5", "r"),
                OwnerRef("Deployment", "apps/v1", "checkout", "d"),
            ),
            workload=OwnerRef("Deployment", "apps/v1", "checkout", "d"),
            application=AppRef(name="checkout", namespace="argocd", found_by="annotation"),
        ),
    )
    [domain_event] = interpret(raw, last_n=None, catalogue=CATALOGUE).events
    validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)
    assert domain_event.data["workload"] == {"kind": "Deployment", "name": "checkout"}
    assert domain_event.data["application"] == {
        "name": "checkout",
        "namespace": "argocd",
        "found_by": "annotation",
    }


def test_the_pack_is_enabled_by_name_and_not_by_default() -> None:
    from processors.packs import DEFAULT_PACKS
    from processors.settings import ProcessorSettings

    default = ProcessorSettings.from_env({"HERALD_KAFKA_BOOTSTRAP": "x:1"})
    assert "kubernetes" not in default.rule_packs
    assert default.rule_packs == DEFAULT_PACKS
    assert not any(t.startswith("kubernetes.") for t in default.catalogue.types)
    named = ProcessorSettings.from_env(
        {
            "HERALD_KAFKA_BOOTSTRAP": "x:1",
            "HERALD_PROCESSOR_RULE_PACKS": "argo-rollouts,argo-cd,kubernetes",
        }
    )
    assert named.rule_packs == ("argo-rollouts", "argo-cd", "kubernetes")
    assert set(named.catalogue.types) == set(CATALOGUE.types)
    alone = ProcessorSettings.from_env(
        {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_PROCESSOR_RULE_PACKS": "kubernetes"}
    )
    assert {t.split(".")[0] for t in alone.catalogue.types} == {"kubernetes"}


@pytest.mark.parametrize(
    ("field_path", "container"),
    [
        ("spec.containers{checkout}", "checkout"),
        ("spec.initContainers{migrate}", "migrate"),
        ("spec.ephemeralContainers{debugger-x7k2p}", "debugger-x7k2p"),
        ("spec.containers[0]", None),  # a container without a name: by index
        ("implicitly required container POD", None),
        ("spec.containers{a}.x", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_field_path_names_the_container_as_the_kubelet_writes_it(
    field_path: object, container: str | None
) -> None:
    convert, groups = compile_field({"field_path": "container"})
    event: dict[str, Any] = {"involvedObject": {"kind": "Pod", "name": "p"}}
    if field_path is not None:
        event["involvedObject"]["fieldPath"] = field_path
    assert (convert(None, event), groups) == (container, set())
    assert convert(None, {"involvedObject": "not an object"}) is None


def test_field_path_reads_only_the_container() -> None:
    with pytest.raises(ValueError, match="`field_path` reads `container`"):
        compile_field({"field_path": "pod"})

"""A realistic multi-cluster sequence through `collectors replay`, Kafka and the Faust worker: the
exact domain events, in order per object, with no extras and no duplicates."""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import TopicReader, events_api_event, replay, rollout_event

SHA = "3f6c2e1d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"


class Script:
    """Builds the replay file: Events as a watch delivers them, with `_cluster` and `_watch_type`."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.events: dict[str, dict[str, Any]] = {}

    def add(
        self,
        cluster: str,
        kind: str,
        namespace: str,
        name: str,
        reason: str,
        message: str,
        *,
        component: str | None = None,
        event: str | None = None,
        count: int | None = None,
        watch_type: str = "ADDED",
        annotations: dict[str, str] | None = None,
        events_api: bool = False,
        series_count: int | None = None,
        event_type: str = "Normal",
    ) -> None:
        """One watch event; `events_api`: of an Event its emitter wrote through events.k8s.io/v1,
        whose repeats raise `series_count`."""
        api = {
            "Pod": "v1",
            "Deployment": "apps/v1",
            "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
            "HelmRelease": "helm.toolkit.fluxcd.io/v2",
        }.get(kind, "argoproj.io/v1alpha1")
        default_component = {
            "Rollout": "rollouts-controller",
            "Application": "argocd-application-controller",
            "Kustomization": "kustomize-controller",
            "HelmRelease": "helm-controller",
        }
        involved = {
            "kind": kind,
            "namespace": namespace,
            "name": name,
            "uid": f"{cluster}-{name}",
            "apiVersion": api,
        }
        key = event or f"{cluster}/{namespace}/{name}/{reason}/{message}"
        if key in self.events:
            body = {**self.events[key], "message": message}
        else:
            emitter = component or default_component.get(kind, "kubelet")
            if events_api:
                body = events_api_event(reason, message, involved=involved, controller=emitter)
            else:
                body = rollout_event(reason, message, involved=involved, component=emitter)
            body["metadata"]["namespace"] = namespace
            body["type"] = event_type
            del body["metadata"]["managedFields"]
            if annotations:
                body["metadata"]["annotations"] = annotations
        if count is not None:
            body["count"] = count
        if series_count is not None:
            body["series"] = {"count": series_count, "lastObservedTime": "2026-08-20T09:20:00.5Z"}
        self.events[key] = body
        self.lines.append(json.dumps({**body, "_cluster": cluster, "_watch_type": watch_type}))


def build() -> tuple[Script, dict[str, list[tuple[Any, ...]]]]:
    s = Script()
    expected: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    # (a) canary completed, promoted by hand at its pause (no RolloutResumed)
    a = ("prod-eu", "Rollout", "billing", "payments")
    s.add(*a, "RolloutUpdated", "Rollout updated to revision 2")
    s.add(*a, "NewReplicaSetCreated", "Created ReplicaSet payments-6f8b9c7d5 (revision 2)")
    s.add(*a, "RolloutStepCompleted", "Rollout step 1/2 completed (setWeight: 50)")
    s.add(*a, "RolloutPaused", "Rollout is paused (CanaryPauseStep)")
    s.add(
        "prod-eu",
        "Pod",
        "billing",
        "payments-6f8b9c7d5-x",
        "Pulled",
        "Container image already present",
    )
    s.add(*a, "RolloutStepCompleted", "Rollout step 2/2 completed (pause)")
    s.add(
        *a,
        "RolloutCompleted",
        "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 2 canary steps",
    )
    expected["prod-eu/billing/Rollout/payments"] = [
        ("rollout.update_started", 2),
        ("rollout.step_advanced", 1),
        ("rollout.paused", "CanaryPauseStep"),
        ("rollout.step_advanced", 2),
        ("rollout.completed", 2),
    ]
    # (b) canary aborted by analysis; the progress-deadline path repeats the abort
    b = ("prod-eu", "Rollout", "shop", "cart")
    s.add(*b, "RolloutUpdated", "Rollout updated to revision 5")
    s.add(*b, "RolloutStepCompleted", "Rollout step 1/3 completed (setWeight: 20)")
    s.add(
        *b,
        "AnalysisRunFailed",
        "Step Analysis Run 'cart-7c-5-1' Status New: 'Failed' Previous: 'Running'",
    )
    s.add(
        *b,
        "RolloutAborted",
        'Rollout aborted update to revision 5: Metric "success-rate" assessed Failed due to failed (3) > failureLimit (2)',
    )
    s.add(*b, "RolloutAborted", 'Rollout "cart" has timed out progressing.')
    expected["prod-eu/shop/Rollout/cart"] = [
        ("rollout.update_started", 5),
        ("rollout.step_advanced", 1),
        ("rollout.aborted", 5),
    ]
    # (c) a manual pause gate that pauses twice: the repeat is a count increment on the same Event
    c = ("prod-eu", "Rollout", "team", "api")
    s.add(*c, "RolloutPaused", "Rollout is paused (CanaryPauseStep)", event="api-paused")
    s.add(*c, "RolloutStepCompleted", "Rollout step 2/4 completed (pause)")
    s.add(
        *c,
        "RolloutPaused",
        "Rollout is paused (CanaryPauseStep)",
        event="api-paused",
        count=2,
        watch_type="MODIFIED",
    )
    s.add(*c, "RolloutResumed", "Rollout is resumed")
    expected["prod-eu/team/Rollout/api"] = [
        ("rollout.paused", "CanaryPauseStep"),
        ("rollout.step_advanced", 2),
        ("rollout.paused", "CanaryPauseStep"),
        ("rollout.resumed",),
    ]
    # (d) blue-green
    d = ("staging", "Rollout", "web", "front")
    s.add(*d, "RolloutUpdated", "Rollout updated to revision 3")
    s.add(*d, "SwitchService", "Switched selector for service 'front' from '5d' to '7c'")
    s.add(
        *d,
        "RolloutCompleted",
        "Rollout completed update to revision 3 (7c): Completed blue-green update",
    )
    expected["staging/web/Rollout/front"] = [
        ("rollout.update_started", 3),
        ("rollout.completed", 3),
    ]
    # (e) a 12-step canary whose steps from 10 on are aggregated into one Event patched each time
    e = ("staging", "Rollout", "big", "svc")
    for i in range(1, 10):
        s.add(*e, "RolloutStepCompleted", f"Rollout step {i}/12 completed (setWeight: {i * 8})")
    for n, i in enumerate(range(10, 13), start=1):
        s.add(
            *e,
            "RolloutStepCompleted",
            f"(combined from similar events): Rollout step {i}/12 completed (setWeight: {i * 8})",
            event="svc-combined",
            count=n,
            watch_type="ADDED" if n == 1 else "MODIFIED",
        )
    expected["staging/big/Rollout/svc"] = [("rollout.step_advanced", i) for i in range(1, 13)]
    # (f) an app created by a user, whose manual sync fails
    f = ("mgmt", "Application", "argocd", "shop")
    dest = {"dest-server": "https://shop.example:6443", "dest-namespace": "shop"}
    s.add(
        *f,
        "ResourceCreated",
        "alice created application",
        component="argocd-server",
        annotations=dest,
    )
    s.add(*f, "ResourceUpdated", "Updated sync status:  -> OutOfSync", annotations=dest)
    s.add(*f, "ResourceUpdated", "Updated health status:  -> Missing", annotations=dest)
    s.add(
        *f,
        "OperationStarted",
        f"alice initiated sync to main ({SHA})",
        component="argocd-server",
        annotations=dest,
    )
    s.add(
        *f,
        "OperationCompleted",
        f'Sync operation to {SHA} failed: one or more objects failed to apply, reason: namespaces "shop" not found',
        annotations=dest,
    )
    s.add(*f, "ResourceUpdated", "Updated health status: Missing -> Degraded", annotations=dest)
    expected["mgmt/argocd/Application/shop"] = [
        ("application.created", "alice"),
        ("application.sync_changed", "OutOfSync"),
        ("application.health_changed", "Missing"),
        ("application.operation_started", "alice"),
        ("application.operation_completed", "Failed"),
        ("application.health_changed", "Degraded"),
    ]
    # (g) a legacy Argo Rollouts v0.10 canary
    g = ("legacy", "Rollout", "old", "batch")
    s.add(*g, "SetStepIndex", "Set Step Index to 1")
    s.add(*g, "SettingStableRS", "Completed all steps")
    s.add(*g, "SetStepIndex", "Set Step Index to 2")
    expected["legacy/old/Rollout/batch"] = [
        ("rollout.step_advanced", 1),
        ("rollout.completed", None),
        ("rollout.step_advanced", 2),
    ]
    # (h) noise
    s.add(
        "prod-eu",
        "Deployment",
        "billing",
        "worker",
        "ScalingReplicaSet",
        "Scaled up replica set worker-5d to 3",
        component="deployment-controller",
    )
    # (j) a rollout whose controller writes its Events through events.k8s.io/v1: `source: {}`, the
    # emitter in reportingComponent, the repeated pause a series on the same Event
    j = ("prod-eu", "Rollout", "billing", "ledger")
    s.add(*j, "RolloutUpdated", "Rollout updated to revision 7", events_api=True)
    paused = ("RolloutPaused", "Rollout is paused (CanaryPauseStep)")
    s.add(*j, *paused, events_api=True, event="ledger-paused")
    s.add(*j, "RolloutStepCompleted", "Rollout step 2/4 completed (pause)", events_api=True)
    s.add(*j, *paused, event="ledger-paused", series_count=2, watch_type="MODIFIED")
    s.add(*j, "RolloutResumed", "Rollout is resumed", events_api=True)
    expected["prod-eu/billing/Rollout/ledger"] = [
        ("rollout.update_started", 7),
        ("rollout.paused", "CanaryPauseStep"),
        ("rollout.step_advanced", 2),
        ("rollout.paused", "CanaryPauseStep"),
        ("rollout.resumed",),
    ]
    # (i) a relist redelivers everything already seen: all duplicates
    s.lines += list(s.lines)
    return s, expected


def summary(event: dict[str, Any]) -> tuple[Any, ...]:
    kind = event["type"].removeprefix("dev.herald.")
    data = event["data"]
    key_field = {
        "rollout.update_started": "revision",
        "rollout.step_advanced": "step_index",
        "rollout.paused": "pause_reason",
        "rollout.aborted": "revision",
        "rollout.completed": "revision",
        "application.sync_changed": "to",
        "application.health_changed": "to",
        "application.operation_started": "user",
        "application.operation_completed": "phase",
        "application.created": "user",
    }.get(kind)
    return (kind, data[key_field]) if key_field else (kind,)


def test_a_realistic_sequence_yields_exactly_the_expected_domain_events(
    topics: Topics,
    kafka: str,
    infra_env: dict[str, str],
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    script, expected = build()
    replay(script.lines, env={**infra_env, **topics.env()}, path=tmp_path / "sequence.jsonl")
    services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"seq-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
        },
    )
    total = sum(len(v) for v in expected.values())
    reader = TopicReader(kafka, topics.domain)
    try:
        assert reader.read_until(lambda v: len(v) >= total, timeout_s=90)
        reader.read_until(lambda v: False, timeout_s=3)  # anything more is an extra or a duplicate
    finally:
        reader.close()
    got: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for event in reader.values:
        data = event["data"]
        got[f"{data['cluster']}/{data['namespace']}/{data['kind']}/{data['name']}"].append(
            summary(event)
        )
    assert dict(got) == dict(expected)
    assert len({e["id"] for e in reader.values}) == total
    aggregated = [e for e in reader.values if e["data"].get("source_message_aggregated")]
    assert [e["data"]["step_index"] for e in aggregated] == [10, 11, 12]
    shop = [e for e in reader.values if e["data"]["name"] == "shop"]
    assert {(e["data"]["dest_server"], e["data"]["dest_namespace"]) for e in shop} == {
        ("https://shop.example:6443", "shop")
    }

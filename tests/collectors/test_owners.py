"""Resolving the owners of an Event's involved object from the caches: the controller chain, the
workload at its top, the Argo CD application, the selected labels. Pure, in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from collectors.owners import (
    KIND_RESOURCES,
    ObjectMeta,
    OwnerIndex,
    application_from_tracking_id,
    parse_meta,
    resolve,
)
from herald_contracts import AppRef, OwnerRef

NS = "shop"
LABELS = frozenset({"app.kubernetes.io/name", "team"})


def obj(
    kind: str,
    name: str,
    *,
    owner: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    namespace: str = NS,
) -> dict[str, Any]:
    """A PartialObjectMetadata as the API server sends it."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{kind}-{name}",
        "labels": labels or {},
        "annotations": annotations or {},
    }
    if owner is not None:
        metadata["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Node", "name": "other", "uid": "x"},  # not a controller
            {
                "apiVersion": owner["apiVersion"],
                "kind": owner["kind"],
                "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"],
                "controller": True,
            },
        ]
    # A watch names the kind it was asked for (a list's items carry none): tests read it back.
    return {"kind": kind, "apiVersion": KIND_RESOURCES[kind].group_version, "metadata": metadata}


def meta(name: str) -> ObjectMeta:
    parsed = parse_meta(obj("Pod", name), selected_labels=LABELS)
    assert parsed is not None
    return parsed


def indexes(*objects: dict[str, Any]) -> dict[str, OwnerIndex]:
    held = {kind: OwnerIndex(max_objects=100) for kind in KIND_RESOURCES}
    for o in objects:
        meta = parse_meta(o, selected_labels=LABELS)
        assert meta is not None
        assert held[o["kind"]].add(meta)
    return held


def involved(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": o["kind"],
        "apiVersion": o["apiVersion"],
        "namespace": o["metadata"]["namespace"],
        "name": o["metadata"]["name"],
        "uid": o["metadata"]["uid"],
    }


def ref(o: dict[str, Any]) -> OwnerRef:
    return OwnerRef(
        kind=o["kind"],
        api_version=o["apiVersion"],
        name=o["metadata"]["name"],
        uid=o["metadata"]["uid"],
    )


TRACKED = {"argocd.argoproj.io/tracking-id": "checkout:apps/Deployment:shop/checkout"}
DEPLOYMENT = obj("Deployment", "checkout", annotations=TRACKED, labels={"team": "payments"})
REPLICASET = obj("ReplicaSet", "checkout-6f8b9", owner=DEPLOYMENT)
POD = obj(
    "Pod",
    "checkout-6f8b9-abcde",
    owner=REPLICASET,
    labels={"app.kubernetes.io/name": "checkout", "pod-template-hash": "6f8b9"},
)


def test_a_pod_of_a_deployment_resolves_to_its_replicaset_deployment_and_application() -> None:
    resolution = resolve(involved(POD), indexes(DEPLOYMENT, REPLICASET, POD))
    assert resolution is not None
    assert resolution.complete
    ownership = resolution.ownership
    assert ownership.owners == (ref(REPLICASET), ref(DEPLOYMENT))
    assert ownership.workload == ref(DEPLOYMENT)
    assert ownership.application == AppRef(name="checkout", namespace=None, found_by="annotation")
    # Selected labels only, along the chain, the nearest object's first.
    assert ownership.labels == {"app.kubernetes.io/name": "checkout", "team": "payments"}


@pytest.mark.parametrize(
    ("top_kind", "middle_kind"),
    [
        pytest.param("StatefulSet", None, id="statefulset-pod"),
        pytest.param("DaemonSet", None, id="daemonset-pod"),
        pytest.param("Job", None, id="job-pod"),
        pytest.param("CronJob", "Job", id="cronjob-job-pod"),
        pytest.param("Rollout", "ReplicaSet", id="rollout-replicaset-pod"),
    ],
)
def test_every_workload_kind_is_the_top_of_its_chain(
    top_kind: str, middle_kind: str | None
) -> None:
    top = obj(top_kind, "w", labels={"app.kubernetes.io/instance": "app-w"})
    chain = [top]
    if middle_kind is not None:
        chain.append(obj(middle_kind, "w-1", owner=top))
    pod = obj("Pod", "w-1-x", owner=chain[-1])
    ownership = resolve(involved(pod), indexes(*chain, pod)).ownership  # type: ignore[union-attr]
    assert ownership.owners == tuple(ref(o) for o in reversed(chain))
    assert ownership.workload == ref(top)
    assert ownership.application == AppRef(name="app-w", namespace=None, found_by="label")


def test_a_workload_event_is_its_own_workload_with_no_owners() -> None:
    rollout = obj(
        "Rollout",
        "payments",
        annotations={
            "argocd.argoproj.io/tracking-id": "argocd_payments:argoproj.io/Rollout:billing/payments"
        },
        namespace="billing",
    )
    ownership = resolve(involved(rollout), indexes(rollout)).ownership  # type: ignore[union-attr]
    assert ownership.owners == ()
    assert ownership.workload == ref(rollout)
    assert ownership.application == AppRef(
        name="payments", namespace="argocd", found_by="annotation"
    )


def test_a_bare_pod_has_no_workload() -> None:
    pod = obj("Pod", "debug")
    resolution = resolve(involved(pod), indexes(pod))
    assert resolution is not None
    assert resolution.complete
    assert (resolution.ownership.owners, resolution.ownership.workload) == ((), None)


def test_the_annotation_on_any_level_wins_over_the_label_and_the_top_wins() -> None:
    deployment = obj("Deployment", "checkout", labels={"app.kubernetes.io/instance": "by-label"})
    replicaset = obj(
        "ReplicaSet",
        "checkout-1",
        owner=deployment,
        annotations={
            "argocd.argoproj.io/tracking-id": "by-annotation:apps/ReplicaSet:shop/checkout-1"
        },
    )
    pod = obj(
        "Pod", "checkout-1-a", owner=replicaset, labels={"app.kubernetes.io/instance": "pod-label"}
    )
    ownership = resolve(involved(pod), indexes(deployment, replicaset, pod)).ownership  # type: ignore[union-attr]
    assert ownership.application == AppRef(
        name="by-annotation", namespace=None, found_by="annotation"
    )
    without = obj("ReplicaSet", "checkout-1", owner=deployment)
    ownership = resolve(involved(pod), indexes(deployment, without, pod)).ownership  # type: ignore[union-attr]
    assert ownership.application == AppRef(name="by-label", namespace=None, found_by="label")


def test_an_owner_not_cached_is_named_but_not_followed() -> None:
    resolution = resolve(involved(POD), indexes(POD))  # the ReplicaSet not listed yet
    assert resolution is not None
    assert not resolution.complete
    assert resolution.ownership.owners == (ref(REPLICASET),)
    assert resolution.ownership.workload is None


def test_an_owner_of_a_reused_name_is_not_followed() -> None:
    successor = obj("ReplicaSet", "checkout-6f8b9", owner=DEPLOYMENT)
    successor["metadata"]["uid"] = "a-new-uid"
    resolution = resolve(involved(POD), indexes(DEPLOYMENT, successor, POD))
    assert resolution is not None
    assert not resolution.complete
    assert resolution.ownership.owners == (ref(REPLICASET),)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"uid": "another-pod"}, id="a-pod-of-the-same-name"),
        pytest.param({"name": "not-cached"}, id="not-cached"),
        pytest.param({"namespace": "elsewhere"}, id="another-namespace"),
    ],
)
def test_an_involved_object_not_in_the_cache_resolves_to_nothing(change: dict[str, str]) -> None:
    resolution = resolve(involved(POD) | change, indexes(DEPLOYMENT, REPLICASET, POD))
    assert resolution is not None
    assert not resolution.complete
    assert resolution.ownership.owners == ()


@pytest.mark.parametrize("kind", ["Rollout2", "Node", "Application", None])
def test_kinds_not_cached_are_not_resolved(kind: str | None) -> None:
    assert resolve({"kind": kind, "name": "x", "namespace": NS}, indexes()) is None


@pytest.mark.parametrize(
    ("tracking_id", "expected"),
    [
        pytest.param(
            "shop:apps/Deployment:shop/checkout", AppRef("shop", None, "annotation"), id="app"
        ),
        pytest.param(":/Service:shop/checkout", None, id="no-app"),
        pytest.param(
            "team-a_shop:apps/Deployment:shop/checkout",
            AppRef("shop", "team-a", "annotation"),
            id="app-in-any-namespace",
        ),
        pytest.param(
            "shop:/ConfigMap:shop/settings", AppRef("shop", None, "annotation"), id="core-group"
        ),
        pytest.param("just-a-name", None, id="not-a-tracking-id"),
    ],
)
def test_tracking_ids_name_the_application(tracking_id: str, expected: AppRef | None) -> None:
    assert application_from_tracking_id(tracking_id) == expected


def test_an_index_holds_at_most_its_bound_and_frees_room_on_delete() -> None:
    index = OwnerIndex(max_objects=2)
    a, b, c = meta("a"), meta("b"), meta("c")
    assert index.add(a)
    assert index.add(b)
    assert not index.add(c)
    assert index.add(a)  # a change of an object held always fits
    index.remove(a)
    assert index.add(c)
    assert index.replace([a, b, c]) == 1
    assert len(index) == 2


@pytest.mark.parametrize(
    "item",
    [
        pytest.param({}, id="no-metadata"),
        pytest.param({"metadata": {"name": "x"}}, id="no-uid"),
        pytest.param({"metadata": {"uid": "u"}}, id="no-name"),
        pytest.param([], id="not-an-object"),
    ],
)
def test_items_without_a_name_or_uid_are_not_cached(item: Any) -> None:
    assert parse_meta(item, selected_labels=LABELS) is None


def test_a_custom_instance_label_is_read_instead_of_the_default() -> None:
    labels = {"argocd.argoproj.io/instance": "shop_checkout", "app.kubernetes.io/instance": "helm"}
    deployment = obj("Deployment", "checkout", labels=labels)
    custom = parse_meta(
        deployment, selected_labels=LABELS, instance_label="argocd.argoproj.io/instance"
    )
    default = parse_meta(deployment, selected_labels=LABELS)
    assert custom is not None
    assert default is not None
    held = indexes()
    held["Deployment"].add(custom)
    resolution = resolve(involved(deployment), held)
    assert resolution is not None
    assert resolution.ownership.application == AppRef("checkout", "shop", "label")
    assert default.instance == "helm"

"""What an Event is about, beyond its involved object: the chain of controllers that own it, the
workload at the top, and the Argo CD application that manages it. Pure: no I/O.

The caches (`OwnerIndex`) hold only what resolution needs of each object (`ObjectMeta`: uid, kind,
name, namespace, its controller reference, Argo CD's tracking annotation and instance label, and a
few selected labels), fed by metadata-only list/watches (`collectors.ownerwatch`), never by a request
per Event: the load on the API server does not grow with the Event rate.

Resolution walks controller references (`ownerReferences` with `controller: true`) upward from the
involved object: Pod -> ReplicaSet -> Deployment or Rollout, Pod -> StatefulSet, DaemonSet or
Job -> CronJob. A reference is followed only to an object of the same namespace whose uid matches
(a name reused by a new object is not its predecessor). The chain stops at an object the caches do
not hold; `Resolution.complete` says whether it reached an object without a controller.

The application: Argo CD's tracking annotation `argocd.argoproj.io/tracking-id`
(`<app>:<group>/<kind>:<namespace>/<name>`, the app being `<namespace>_<app>` for applications
outside Argo CD's own namespace), else the label `app.kubernetes.io/instance` (Argo CD's default
tracking method before 3.0), read from the top of the chain down to the involved object: Argo CD
sets them on what it applied, usually the workload; its children inherit the label through their
templates, which is why the top wins.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from herald_contracts import AppRef, OwnerRef, Ownership

TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
INSTANCE_LABEL = "app.kubernetes.io/instance"

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Rollout"})
"""Kinds that name a workload: the top of a chain of one of these is the Event's `workload`."""

MAX_CHAIN = 8
"""Longest chain followed (a reference cycle, which Kubernetes forbids, cannot loop)."""


class Resource(enum.StrEnum):
    """The owning kinds cached, by resource; `kind`, `group` and `version` say how to ask for them."""

    PODS = "pods"
    REPLICASETS = "replicasets"
    DEPLOYMENTS = "deployments"
    STATEFULSETS = "statefulsets"
    DAEMONSETS = "daemonsets"
    JOBS = "jobs"
    CRONJOBS = "cronjobs"
    ROLLOUTS = "rollouts"

    @property
    def kind(self) -> str:
        return _KINDS[self]

    @property
    def group_version(self) -> str:
        return _GROUP_VERSIONS[self]

    @property
    def optional(self) -> bool:
        """A custom resource (Argo Rollouts): its absence from a cluster is no error."""
        return self is Resource.ROLLOUTS


_KINDS = {
    Resource.PODS: "Pod",
    Resource.REPLICASETS: "ReplicaSet",
    Resource.DEPLOYMENTS: "Deployment",
    Resource.STATEFULSETS: "StatefulSet",
    Resource.DAEMONSETS: "DaemonSet",
    Resource.JOBS: "Job",
    Resource.CRONJOBS: "CronJob",
    Resource.ROLLOUTS: "Rollout",
}
_GROUP_VERSIONS = {
    Resource.PODS: "v1",
    Resource.REPLICASETS: "apps/v1",
    Resource.DEPLOYMENTS: "apps/v1",
    Resource.STATEFULSETS: "apps/v1",
    Resource.DAEMONSETS: "apps/v1",
    Resource.JOBS: "batch/v1",
    Resource.CRONJOBS: "batch/v1",
    Resource.ROLLOUTS: "argoproj.io/v1alpha1",
}
KIND_RESOURCES = {r.kind: r for r in Resource}


@dataclass(frozen=True, slots=True)
class Controller:
    kind: str
    api_version: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    """What the caches keep of one object, flat and shared: every string is interned (50,000 Pods
    of a few thousand ReplicaSets repeat the same namespaces, owner names, owner uids and labels),
    the selected labels are one interned string (`key=value` lines: neither a label key nor a value
    holds `=` or a newline), and the controller reference is four of those strings, not an object
    per Pod (`bench/owner_cache.py` measures it)."""

    uid: str
    name: str
    namespace: str
    controller_kind: str | None
    controller_api_version: str | None
    controller_name: str | None
    controller_uid: str | None
    tracking_id: str | None
    instance: str | None
    selected_labels: str

    @property
    def controller(self) -> Controller | None:
        if (
            self.controller_kind is None
            or self.controller_api_version is None
            or self.controller_name is None
            or self.controller_uid is None
        ):
            return None
        return Controller(
            kind=self.controller_kind,
            api_version=self.controller_api_version,
            name=self.controller_name,
            uid=self.controller_uid,
        )

    @property
    def labels(self) -> tuple[tuple[str, str], ...]:
        if not self.selected_labels:
            return ()
        pairs = (line.partition("=") for line in self.selected_labels.split("\n"))
        return tuple((key, value) for key, _, value in pairs)


def parse_meta(
    item: Any, *, selected_labels: frozenset[str], instance_label: str = INSTANCE_LABEL
) -> ObjectMeta | None:
    """The `ObjectMeta` of a list item or watch object (a PartialObjectMetadata, or a full object),
    or None when it has no name or uid. `instance_label` is the label Argo CD's label tracking
    writes (its `application.instanceLabelKey`)."""
    metadata = item.get("metadata") if isinstance(item, dict) else None
    if not isinstance(metadata, dict):
        return None
    uid, name = metadata.get("uid"), metadata.get("name")
    if not isinstance(uid, str) or not uid or not isinstance(name, str) or not name:
        return None
    namespace = metadata.get("namespace")
    labels = _strings(metadata.get("labels"))
    annotations = _strings(metadata.get("annotations"))
    tracking = annotations.get(TRACKING_ANNOTATION)
    instance = labels.get(instance_label)
    controller = _controller(metadata.get("ownerReferences"))
    return ObjectMeta(
        uid=_intern(uid),
        name=_intern(name),
        namespace=_intern(namespace if isinstance(namespace, str) else ""),
        controller_kind=controller.kind if controller else None,
        controller_api_version=controller.api_version if controller else None,
        controller_name=controller.name if controller else None,
        controller_uid=controller.uid if controller else None,
        tracking_id=_intern(tracking) if tracking else None,
        instance=_intern(instance) if instance else None,
        selected_labels=_intern(
            "\n".join(f"{k}={v}" for k, v in sorted(labels.items()) if k in selected_labels)
        ),
    )


def _controller(references: object) -> Controller | None:
    if not isinstance(references, list):
        return None
    for reference in references:
        if isinstance(reference, dict) and reference.get("controller") is True:
            kind, api_version = reference.get("kind"), reference.get("apiVersion")
            name, uid = reference.get("name"), reference.get("uid")
            if all(isinstance(v, str) and v for v in (kind, api_version, name, uid)):
                return Controller(
                    kind=_intern(str(kind)),
                    api_version=_intern(str(api_version)),
                    name=_intern(str(name)),
                    uid=_intern(str(uid)),
                )
    return None


def _strings(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _intern(text: str) -> str:
    return sys.intern(text)


class OwnerIndex:
    """The cached objects of one kind, by namespace and name; at most `max_objects` (then further
    objects are refused, `add` returning False, until some are deleted).

    Written by one thread (the kind's list/watch), read by the Event watch: every change replaces
    a dict entry, which CPython does atomically, so a reader sees the object before or after it.
    """

    def __init__(self, *, max_objects: int) -> None:
        self._max_objects = max_objects
        self._objects: dict[str, dict[str, ObjectMeta]] = {}
        """namespace -> name -> object: no key tuple per object."""
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, namespace: str, name: str) -> ObjectMeta | None:
        names = self._objects.get(namespace)
        return names.get(name) if names is not None else None

    def add(self, meta: ObjectMeta) -> bool:
        """Store or replace the object; False when the index is full and it was not stored."""
        names = self._objects.get(meta.namespace)
        if names is None or meta.name not in names:
            if self._count >= self._max_objects:
                return False
            self._count += 1
        if names is None:
            names = self._objects[meta.namespace] = {}
        names[meta.name] = meta
        return True

    def remove(self, meta: ObjectMeta) -> None:
        names = self._objects.get(meta.namespace)
        current = names.get(meta.name) if names is not None else None
        if names is not None and current is not None and current.uid == meta.uid:
            del names[meta.name]
            self._count -= 1
            if not names:
                del self._objects[meta.namespace]

    def replace(self, metas: Iterable[ObjectMeta]) -> int:
        """Hold exactly these (a relist's result, up to the bound); how many were refused."""
        fresh = OwnerIndex(max_objects=self._max_objects)
        refused = sum(1 for meta in metas if not fresh.add(meta))
        # One assignment each: a reader sees the old set or the new one (and a count a moment off).
        self._objects, self._count = fresh._objects, fresh._count
        return refused


@dataclass(frozen=True)
class Resolution:
    ownership: Ownership
    """`owners`: the controllers above the involved object, nearest first; `workload`: the top of
    the chain (the involved object itself when it has no controller) if it is a workload;
    `labels`: the selected labels along the chain, the nearest object's value first."""
    complete: bool
    """True when the involved object and every owner above it were in the caches."""


def resolve(involved: Mapping[str, Any], indexes: Mapping[str, OwnerIndex]) -> Resolution | None:
    """The owners of the involved object of an Event, from the caches by kind; None when its kind
    is not cached (not a Pod, ReplicaSet or workload) or it has no name."""
    kind, name = involved.get("kind"), involved.get("name")
    namespace = involved.get("namespace")
    namespace = namespace if isinstance(namespace, str) else ""
    if not isinstance(kind, str) or kind not in indexes or not isinstance(name, str) or not name:
        return None
    uid = involved.get("uid")
    meta = indexes[kind].get(namespace, name)
    if meta is None or (isinstance(uid, str) and uid and uid != meta.uid):
        return Resolution(ownership=Ownership(), complete=False)
    api_version = involved.get("apiVersion")
    chain: list[tuple[OwnerRef, ObjectMeta]] = [
        (
            OwnerRef(
                kind=kind,
                api_version=api_version
                if isinstance(api_version, str) and api_version
                else _default_api_version(kind),
                name=name,
                uid=meta.uid,
            ),
            meta,
        )
    ]
    complete = True
    while (controller := chain[-1][1].controller) is not None and len(chain) <= MAX_CHAIN:
        index = indexes.get(controller.kind)
        owner = index.get(namespace, controller.name) if index is not None else None
        if owner is None or owner.uid != controller.uid:
            # Not cached (a kind not watched, one not listed yet, or gone): named, not followed.
            chain.append((_ref(controller), _UNKNOWN))
            complete = False
            break
        chain.append((_ref(controller), owner))
    top = chain[-1][0]
    labels: dict[str, str] = {}
    for _, held in chain:
        for key, value in held.labels:
            labels.setdefault(key, value)
    return Resolution(
        ownership=Ownership(
            owners=tuple(ref for ref, _ in chain[1:]),
            workload=top if top.kind in WORKLOAD_KINDS else None,
            application=_application([held for _, held in reversed(chain)]),
            labels=labels,
        ),
        complete=complete,
    )


def _default_api_version(kind: str) -> str:
    resource = KIND_RESOURCES.get(kind)
    return resource.group_version if resource is not None else "v1"


_UNKNOWN = ObjectMeta(
    uid="",
    name="",
    namespace="",
    controller_kind=None,
    controller_api_version=None,
    controller_name=None,
    controller_uid=None,
    tracking_id=None,
    instance=None,
    selected_labels="",
)


def _ref(controller: Controller) -> OwnerRef:
    return OwnerRef(
        kind=controller.kind,
        api_version=controller.api_version,
        name=controller.name,
        uid=controller.uid,
    )


def _application(top_down: list[ObjectMeta]) -> AppRef | None:
    """The application named by the first object, from the top, that carries the tracking
    annotation; else by the first that carries the instance label."""
    for meta in top_down:
        if meta.tracking_id:
            app = application_from_tracking_id(meta.tracking_id)
            if app is not None:
                return app
    for meta in top_down:
        if meta.instance:
            return _app_instance(meta.instance, found_by="label")
    return None


def application_from_tracking_id(tracking_id: str) -> AppRef | None:
    """`<app>:<group>/<kind>:<namespace>/<name>` -> the application; `<app>` is `<ns>_<name>` for
    an application in another namespace than Argo CD's (Argo CD's `util/argo/resource_tracking.go`:
    application names cannot contain `_`, so the first `_` splits). None when malformed."""
    app, separator, rest = tracking_id.partition(":")
    if not separator or not app or ":" not in rest:
        return None
    return _app_instance(app, found_by="annotation")


def _app_instance(app: str, *, found_by: str) -> AppRef:
    """Argo CD's instance name of an application: `<name>`, or `<namespace>_<name>` (the label
    carries the same)."""
    namespace, underscore, name = app.partition("_")
    if underscore and namespace and name:
        return AppRef(name=name, namespace=namespace, found_by=found_by)
    return AppRef(name=app, namespace=None, found_by=found_by)

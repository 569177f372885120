"""The Leases of the collector's home cluster: `KubeLeaseStore` on the official kubernetes client,
and `MemoryLeaseStore`, its in-memory twin for tests, with the same optimistic concurrency.

Only the Leases of this replica's group are read (listed by the label
`herald.dev/collector-lease=<group>`), in one namespace. A write names the resourceVersion it read:
a replace at an older version, or a create of a name that exists, is `LeaseConflictError` (409), as
is a replace of a Lease deleted meanwhile (404): someone else wrote it first. A delete names the
resourceVersion it read too (a precondition): a Lease renewed meanwhile, or already gone, is
`LeaseConflictError`. Anything else that goes wrong (unreachable, 403, 5xx, a body that is not a
Lease) is `LeaseError`; the keeper tries again on its next beat.
RBAC in that namespace: get, list, watch, create, update and delete on `coordination.k8s.io`
leases (`get` and `watch` are not used today; granted so that `kubectl`-style tooling under the
same account works and the requirement does not change if the keeper moves to a watch).
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from collectors.errors import LeaseConflictError, LeaseError
from collectors.leases import (
    DEFAULT_GROUP,
    GROUP_LABEL,
    KIND_LABEL,
    LEGACY_KINDS,
    SUBJECT_ANNOTATION,
    Lease,
    LeaseKind,
)


class LeaseStore(Protocol):
    def list(self) -> dict[str, Lease]:
        """The collectors' Leases, by name; LeaseError if they cannot be read now."""

    def write(self, lease: Lease) -> Lease:
        """Create (`version` None) or replace at `version`; the Lease as written, with its new
        version. LeaseConflictError if someone else wrote it first; LeaseError otherwise."""

    def delete(self, lease: Lease) -> None:
        """Delete it if it is still at `version`. LeaseConflictError if it changed or is gone;
        LeaseError otherwise."""


class KubeLeaseStore:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        namespace: str,
        group: str = DEFAULT_GROUP,
        timeouts: tuple[float, float],
    ) -> None:
        self._api = client.CoordinationV1Api(api)
        self._namespace = namespace
        self._group = group
        self._timeouts = timeouts

    def list(self) -> dict[str, Lease]:
        body = self._call(
            self._api.list_namespaced_lease,
            self._namespace,
            label_selector=_selector(self._group),
            operation="list",
        )
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise LeaseError(f"unreadable lease list: {str(body)[:200]}")
        leases = (_from_json(item, self._group) for item in items)
        return {lease.name: lease for lease in leases if lease is not None}

    def write(self, lease: Lease) -> Lease:
        body = _to_json(lease, self._group)
        if lease.version is None:
            answer = self._call(
                self._api.create_namespaced_lease, self._namespace, body, operation="create"
            )
        else:
            answer = self._call(
                self._api.replace_namespaced_lease,
                lease.name,
                self._namespace,
                body,
                operation="update",
            )
        written = _from_json(answer, self._group)
        if written is None:
            raise LeaseError(f"unreadable lease: {str(answer)[:200]}")
        return written

    def delete(self, lease: Lease) -> None:
        if lease.version is None:
            raise LeaseConflictError(f"delete: {lease.name} was never written", status=404)
        self._call(
            self._api.delete_namespaced_lease,
            lease.name,
            self._namespace,
            body={"preconditions": {"resourceVersion": lease.version}},
            operation="delete",
        )

    def _call(self, method: Any, *args: Any, operation: str, **kwargs: Any) -> Any:
        try:
            response = method(
                *args, _preload_content=False, _request_timeout=self._timeouts, **kwargs
            )
            return json.loads(response.data)
        except ApiException as e:
            error = LeaseConflictError if e.status in (404, 409) else LeaseError
            raise error(f"{operation}: {e.status} {e.reason}", status=e.status) from e
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise LeaseError(f"{operation}: API server unreachable: {e}") from e
        except ValueError as e:
            raise LeaseError(f"{operation}: unreadable answer: {e}") from e


class _Memory:
    """What the groups of one in-memory namespace share."""

    def __init__(self) -> None:
        self.leases: dict[str, tuple[str, Lease]] = {}
        """Per name, the Lease's group and the Lease."""
        self.version = 0
        self.lock = threading.Lock()
        self.down = False


class MemoryLeaseStore:
    """The API server's Lease semantics in memory: versions, 409 on a stale write or delete, and
    groups listed apart (`in_group` gives another group's store on the same namespace). `down`
    makes every call fail as an unreachable server would, in every group."""

    def __init__(self, group: str = DEFAULT_GROUP, *, _shared: _Memory | None = None) -> None:
        self._group = group
        self._memory = _shared if _shared is not None else _Memory()

    @property
    def down(self) -> bool:
        return self._memory.down

    @down.setter
    def down(self, down: bool) -> None:
        self._memory.down = down

    def in_group(self, group: str) -> MemoryLeaseStore:
        """The store of another group, in the same namespace."""
        return MemoryLeaseStore(group, _shared=self._memory)

    def list(self) -> dict[str, Lease]:
        with self._memory.lock:
            if self.down:
                raise LeaseError("list: API server unreachable")
            return {
                name: lease
                for name, (group, lease) in self._memory.leases.items()
                if group == self._group
            }

    def write(self, lease: Lease) -> Lease:
        with self._memory.lock:
            if self.down:
                raise LeaseError("write: API server unreachable")
            held = self._memory.leases.get(lease.name)
            if lease.version is None and held is not None:
                raise LeaseConflictError(f"create: {lease.name} already exists", status=409)
            if lease.version is not None and (held is None or held[1].version != lease.version):
                raise LeaseConflictError(f"update: {lease.name} changed meanwhile", status=409)
            self._memory.version += 1
            written = replace(lease, version=str(self._memory.version))
            self._memory.leases[lease.name] = (self._group, written)
            return written

    def delete(self, lease: Lease) -> None:
        with self._memory.lock:
            if self.down:
                raise LeaseError("delete: API server unreachable")
            held = self._memory.leases.get(lease.name)
            if held is None:
                raise LeaseConflictError(f"delete: {lease.name} not found", status=404)
            if held[1].version != lease.version:
                raise LeaseConflictError(f"delete: {lease.name} changed meanwhile", status=409)
            del self._memory.leases[lease.name]

    def get(self, name: str) -> Lease | None:
        with self._memory.lock:
            held = self._memory.leases.get(name)
            return None if held is None else held[1]

    def names(self) -> set[str]:
        """Every Lease's name, of every group."""
        with self._memory.lock:
            return set(self._memory.leases)


def _to_json(lease: Lease, group: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": lease.name,
        "labels": {GROUP_LABEL: group, KIND_LABEL: lease.kind.value},
        "annotations": {SUBJECT_ANNOTATION: lease.subject},
    }
    if lease.version is not None:
        metadata["resourceVersion"] = lease.version
    spec: dict[str, Any] = {
        "holderIdentity": lease.holder or None,
        "leaseDurationSeconds": lease.duration_s,
        "leaseTransitions": lease.transitions,
        "acquireTime": _micro_time(lease.acquire_time),
        "renewTime": _micro_time(lease.renew_time),
    }
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {k: v for k, v in spec.items() if v is not None},
    }


def _selector(group: str) -> str:
    """This group's Leases; for the default group, those written before groups too."""
    if group == DEFAULT_GROUP:
        return f"{GROUP_LABEL} in ({','.join([group, *sorted(LEGACY_KINDS)])})"
    return f"{GROUP_LABEL}={group}"


def _from_json(item: Any, group: str) -> Lease | None:
    """A Lease of this group; None for anything else (another group, no name)."""
    if not isinstance(item, dict):
        return None
    metadata = item.get("metadata") or {}
    spec = item.get("spec") or {}
    if not isinstance(metadata, dict) or not isinstance(spec, dict):
        return None
    kind = _kind(metadata.get("labels"), group)
    if kind is None:
        return None
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        return None
    return Lease(
        name=name,
        kind=kind,
        subject=str((metadata.get("annotations") or {}).get(SUBJECT_ANNOTATION, "")),
        holder=str(spec.get("holderIdentity") or ""),
        duration_s=_int(spec.get("leaseDurationSeconds")),
        acquire_time=_parse_time(spec.get("acquireTime")),
        renew_time=_parse_time(spec.get("renewTime")),
        transitions=_int(spec.get("leaseTransitions")),
        version=str(metadata.get("resourceVersion") or "") or None,
    )


def _kind(labels: Any, group: str) -> LeaseKind | None:
    """The kind of a Lease of this group, from its labels; None if it is not one."""
    if not isinstance(labels, dict):
        return None
    label = labels.get(GROUP_LABEL)
    if label == group:
        value = labels.get(KIND_LABEL, "")
    elif group == DEFAULT_GROUP and label in LEGACY_KINDS:
        value = label  # written before groups: the label held the kind
    else:
        return None
    try:
        return LeaseKind(value)
    except ValueError:
        return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _micro_time(stamp: datetime | None) -> str | None:
    """metav1.MicroTime: RFC 3339 with microseconds, in UTC."""
    if stamp is None:
        return None
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None

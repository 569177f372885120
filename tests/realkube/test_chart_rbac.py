"""The collector's identity as the Helm chart renders it, against a real API server's RBAC: enough
to hold a Lease in the release namespace the way a lease holder does (create, read, renew, list,
watch, and delete at a resourceVersion), and nothing more: it cannot touch Leases in another
namespace, read one
Event by name, or write Events. The real server decides each request (RBAC authorizer), with a token
it issued for the ServiceAccount the chart's collector Deployment runs as."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes import client

from herald_dev.helm import NAMESPACE
from herald_dev.realkube import RealKube
from tests.realkube.kube import new_namespace


@pytest.fixture(scope="module")
def as_collector(real_kube: RealKube) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = real_kube.url
    configuration.ssl_ca_cert = str(real_kube.pki / "ca.crt")
    configuration.api_key = {"authorization": f"Bearer {real_kube.collector_token()}"}
    configuration.retries = False
    with client.ApiClient(configuration) as api:
        yield api


def _lease(name: str, holder: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
    }


def _refused(call: object, *args: object, **kwargs: object) -> int:
    """The status of a request the server must refuse."""
    with pytest.raises(client.ApiException) as refused:
        call(*args, **kwargs)  # type: ignore[operator]
    return int(refused.value.status)


def test_the_collector_holds_and_renews_a_lease_in_the_release_namespace(
    as_collector: client.ApiClient,
) -> None:
    leases = client.CoordinationV1Api(as_collector)
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    leases.create_namespaced_lease(NAMESPACE, _lease(name, "herald-collector-a"))
    held = leases.read_namespaced_lease(name, NAMESPACE)
    assert held.spec.holder_identity == "herald-collector-a"
    held.spec.holder_identity = "herald-collector-b"  # taken over after expiry: an update
    leases.replace_namespaced_lease(name, NAMESPACE, held)
    listed = leases.list_namespaced_lease(NAMESPACE)
    assert name in [lease.metadata.name for lease in listed.items]
    watched = leases.list_namespaced_lease(
        NAMESPACE, watch=True, timeout_seconds=1, _preload_content=False
    )
    assert watched.status == 200
    watched.release_conn()


def test_the_collector_deletes_a_lease_at_the_version_it_read_and_touches_none_elsewhere(
    real_kube: RealKube, as_collector: client.ApiClient
) -> None:
    leases = client.CoordinationV1Api(as_collector)
    name = f"cluster-{uuid.uuid4().hex[:8]}"
    created = leases.create_namespaced_lease(NAMESPACE, _lease(name, "herald-collector-a"))
    read_version = created.metadata.resource_version
    created.spec.renew_time = datetime.now(UTC)  # renewed after it was read: a new version
    renewed = leases.replace_namespaced_lease(name, NAMESPACE, created)
    assert renewed.metadata.resource_version != read_version
    stale = {"preconditions": {"resourceVersion": read_version}}
    assert _refused(leases.delete_namespaced_lease, name, NAMESPACE, body=stale) == 409
    current = {"preconditions": {"resourceVersion": renewed.metadata.resource_version}}
    leases.delete_namespaced_lease(name, NAMESPACE, body=current)
    assert _refused(leases.read_namespaced_lease, name, NAMESPACE) == 404
    elsewhere = new_namespace(real_kube)
    assert _refused(leases.create_namespaced_lease, elsewhere, _lease(name, "x")) == 403
    assert _refused(leases.list_namespaced_lease, elsewhere) == 403


def test_the_collector_lists_events_but_cannot_read_one_by_name_or_write_one(
    real_kube: RealKube, as_collector: client.ApiClient
) -> None:
    namespace = new_namespace(real_kube)
    event = {
        "metadata": {"name": "e1"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": namespace},
        "reason": "Test",
        "message": "m",
    }
    with real_kube.admin() as admin:
        client.CoreV1Api(admin).create_namespaced_event(namespace, event)
    core = client.CoreV1Api(as_collector)
    assert [e.metadata.name for e in core.list_namespaced_event(namespace).items] == ["e1"]
    assert _refused(core.read_namespaced_event, "e1", namespace) == 403
    assert _refused(core.create_namespaced_event, namespace, event) == 403

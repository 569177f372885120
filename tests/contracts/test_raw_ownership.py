"""The raw record's optional ownership fields (`owners`, `workload`, `application`, `labels`): they
round-trip, match the schema, are absent when not resolved, and records without them still decode."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from herald_contracts import (
    AppRef,
    ContractError,
    OwnerRef,
    Ownership,
    RawRecord,
    WatchType,
    decode_raw_record,
    encode_raw_record,
)
from tests.support import validate

REPLICASET = OwnerRef(kind="ReplicaSet", api_version="apps/v1", name="checkout-6f8b9", uid="rs-1")
DEPLOYMENT = OwnerRef(kind="Deployment", api_version="apps/v1", name="checkout", uid="d-1")
RESOLVED = Ownership(
    owners=(REPLICASET, DEPLOYMENT),
    workload=DEPLOYMENT,
    application=AppRef(name="checkout", namespace="shop", found_by="annotation"),
    labels={"app.kubernetes.io/name": "checkout"},
)


def _record(ownership: Ownership | None) -> RawRecord:
    event = {
        "metadata": {"name": "e", "namespace": "shop", "uid": "u-1", "resourceVersion": "7"},
        "involvedObject": {"kind": "Pod", "namespace": "shop", "name": "checkout-6f8b9-abcde"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
    }
    return RawRecord("prod-eu", WatchType.ADDED, "2026-08-20T09:16:54Z", event, ownership)


@pytest.mark.parametrize(
    "ownership",
    [
        pytest.param(RESOLVED, id="chain-workload-application-labels"),
        pytest.param(Ownership(), id="resolved-no-owners"),
        pytest.param(replace(RESOLVED, application=None, labels={}), id="no-application"),
        pytest.param(None, id="not-resolved"),
    ],
)
def test_ownership_round_trips_and_matches_the_schema(ownership: Ownership | None) -> None:
    record = _record(ownership)
    encoded = json.loads(encode_raw_record(record))
    validate("kube-event-record.v1.schema.json", encoded)
    assert decode_raw_record(encode_raw_record(record)) == record


def test_an_unresolved_record_carries_none_of_the_fields() -> None:
    encoded = json.loads(encode_raw_record(_record(None)))
    assert set(encoded) == {"cluster", "watch_type", "collected_at", "object"}


def test_the_fields_are_written_as_documented() -> None:
    encoded = json.loads(encode_raw_record(_record(RESOLVED)))
    assert encoded["owners"] == [
        {"kind": "ReplicaSet", "apiVersion": "apps/v1", "name": "checkout-6f8b9", "uid": "rs-1"},
        {"kind": "Deployment", "apiVersion": "apps/v1", "name": "checkout", "uid": "d-1"},
    ]
    assert encoded["workload"] == encoded["owners"][-1]
    assert encoded["application"] == {
        "name": "checkout",
        "namespace": "shop",
        "found_by": "annotation",
    }
    assert encoded["labels"] == {"app.kubernetes.io/name": "checkout"}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param({"owners": {}}, "'owners' must be an array", id="owners-not-a-list"),
        pytest.param({"owners": [{"kind": "ReplicaSet"}]}, "owners[]", id="owner-without-uid"),
        pytest.param({"workload": "checkout"}, "'workload'", id="workload-a-string"),
        pytest.param({"application": {"name": ""}}, "'application'", id="application-unnamed"),
        pytest.param({"labels": {"team": 1}}, "'labels'", id="label-a-number"),
    ],
)
def test_a_malformed_ownership_is_refused_with_the_reason(
    change: dict[str, Any], complaint: str
) -> None:
    encoded = json.loads(encode_raw_record(_record(RESOLVED))) | change
    with pytest.raises(ContractError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        decode_raw_record(json.dumps(encoded).encode())
    with pytest.raises(jsonschema.ValidationError):
        validate("kube-event-record.v1.schema.json", encoded)


def test_a_workload_without_owners_is_not_a_resolved_record() -> None:
    encoded = json.loads(encode_raw_record(_record(RESOLVED)))
    del encoded["owners"]
    with pytest.raises(jsonschema.ValidationError):
        validate("kube-event-record.v1.schema.json", encoded)
    # Decoders written before ownership ignore it; this one reads no ownership without `owners`.
    assert decode_raw_record(json.dumps(encoded).encode()).ownership is None

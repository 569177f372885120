"""A domain event names the workload and the Argo CD application the collector resolved for its
Event's object (`workload`, `application`), null when the raw record carries no ownership."""

from __future__ import annotations

import json
from typing import Any

from herald_contracts import (
    SCHEMA_BASE_URI,
    AppRef,
    OwnerRef,
    Ownership,
    RawRecord,
    WatchType,
    decode_raw_record,
    encode_domain_event,
    encode_raw_record,
)
from processors.interpreting import interpret
from tests.support import rollout_event, validate

ROLLOUT_REF = OwnerRef(
    kind="Rollout", api_version="argoproj.io/v1alpha1", name="payments", uid="r-1"
)


def _data(ownership: Ownership | None) -> dict[str, Any]:
    record = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:17:00Z",
        object=rollout_event("RolloutResumed", "Rollout is resumed"),
        ownership=ownership,
    )
    # Through the raw topic's bytes, as the processor reads it.
    [domain_event] = interpret(decode_raw_record(encode_raw_record(record)), last_n=None).events
    validate("deploy-event.v1.schema.json", json.loads(encode_domain_event(domain_event)))
    validate(domain_event.dataschema.removeprefix(SCHEMA_BASE_URI), domain_event.data)
    return domain_event.data


def test_a_rollout_managed_by_an_application_names_both() -> None:
    data = _data(
        Ownership(
            workload=ROLLOUT_REF,
            application=AppRef(name="payments", namespace="billing", found_by="annotation"),
        )
    )
    assert data["workload"] == {"kind": "Rollout", "name": "payments"}
    assert data["application"] == {
        "name": "payments",
        "namespace": "billing",
        "found_by": "annotation",
    }


def test_an_application_found_by_its_label_has_no_namespace() -> None:
    data = _data(
        Ownership(
            workload=ROLLOUT_REF,
            application=AppRef(name="payments-prod", namespace=None, found_by="label"),
        )
    )
    assert data["application"] == {"name": "payments-prod", "namespace": None, "found_by": "label"}


def test_a_record_without_ownership_gives_nulls() -> None:
    data = _data(None)
    assert (data["workload"], data["application"]) == (None, None)


def test_a_resolved_object_of_no_workload_and_no_application_gives_nulls() -> None:
    data = _data(Ownership())
    assert (data["workload"], data["application"]) == (None, None)


def test_an_application_name_longer_than_a_kubernetes_name_is_not_carried() -> None:
    """It comes from an annotation or a label whoever writes the object chooses."""
    data = _data(
        Ownership(
            workload=ROLLOUT_REF,
            application=AppRef(name="a" * 100_000, namespace=None, found_by="annotation"),
        )
    )
    assert data["application"] is None
    assert data["workload"] == {"kind": "Rollout", "name": "payments"}

from __future__ import annotations

import json

import pytest

from herald_contracts import (
    EVENT_TYPE_PREFIX,
    EVENT_TYPES,
    ContractError,
    DomainEvent,
    decode_domain_event,
    encode_domain_event,
    object_source,
)
from tests.support import SCHEMAS, validate


def _event() -> DomainEvent:
    return DomainEvent(
        id="1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        source=object_source(
            cluster="prod-eu", namespace="billing", kind="Rollout", name="payments"
        ),
        type="dev.herald.rollout.completed",
        subject="payments",
        time="2026-08-20T09:16:53Z",
        data={
            "cluster": "prod-eu",
            "namespace": "billing",
            "kind": "Rollout",
            "name": "payments",
            "observed_at": "2026-08-20T09:16:53Z",
            "source_reason": "RolloutCompleted",
            "source_message": "Rollout completed update to revision 2 (abc): Initial deploy",
            "source_event_uid": "9f0c",
            "source_event_count": 1,
            "source_event_resource_version": "48211102",
            "revision": 2,
            "pod_hash": "abc",
            "detail": "Initial deploy",
            "legacy": False,
        },
        key="prod-eu/billing/Rollout/payments",
    )


def test_encoded_event_is_a_cloudevent_matching_the_published_schema() -> None:
    validate("deploy-event.v1.schema.json", json.loads(encode_domain_event(_event())))


def test_source_uses_the_plural_kind_path() -> None:
    assert _event().source == "/clusters/prod-eu/namespaces/billing/rollouts/payments"


def test_event_round_trips_with_its_key() -> None:
    event = _event()
    assert decode_domain_event(encode_domain_event(event), key=event.key.encode()) == event


def test_catalogue_name_is_the_type_without_the_prefix() -> None:
    assert _event().catalogue_name == "rollout.completed"


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        pytest.param(lambda e: e.update(specversion="0.3"), "specversion", id="old-specversion"),
        pytest.param(lambda e: e.pop("id"), "'id'", id="no-id"),
        pytest.param(
            lambda e: e.update(type="com.example.other"), "dev.herald.", id="foreign-type"
        ),
        pytest.param(lambda e: e.update(data="text"), "'data'", id="data-not-object"),
        pytest.param(
            lambda e: e.update(time="20 Aug 2026 09:16"), "RFC 3339", id="time-not-rfc3339"
        ),
        pytest.param(
            lambda e: e.update(time="0000-01-01T00:00:00Z"), "RFC 3339", id="time-year-zero"
        ),
    ],
)
def test_malformed_events_are_refused_with_the_reason(mutate: object, complaint: str) -> None:
    payload = json.loads(encode_domain_event(_event()))
    mutate(payload)  # type: ignore[operator]
    with pytest.raises(ContractError, match=complaint):
        decode_domain_event(json.dumps(payload).encode(), key=b"k")


def test_the_event_types_listed_are_exactly_the_published_schema_types() -> None:
    schema = json.loads((SCHEMAS / "deploy-event.v1.schema.json").read_text())
    published = schema["properties"]["type"]["enum"]
    assert sorted(f"{EVENT_TYPE_PREFIX}{t}" for t in EVENT_TYPES) == sorted(published)

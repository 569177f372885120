from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from herald_contracts import (
    DOMAIN_CONTENT_TYPE,
    EVENT_TYPE_PREFIX,
    EVENT_TYPES,
    SCHEMA_BASE_URI,
    ContractError,
    DomainEvent,
    data_schema_uri,
    decode_domain_event,
    domain_record_headers,
    encode_domain_event,
    object_source,
    resource_of_kind,
)
from tests.support import SCHEMAS, validate

ENVELOPE = "deploy-event.v1.schema.json"


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


def _encoded() -> dict[str, Any]:
    return dict(json.loads(encode_domain_event(_event())))


def test_encoded_event_is_a_cloudevent_matching_the_published_schema() -> None:
    validate(ENVELOPE, _encoded())


def test_the_event_names_the_schema_of_its_type_and_its_data_matches_that_schema_alone() -> None:
    encoded = _encoded()
    assert (
        encoded["dataschema"] == "https://herald.dev/schemas/data/rollout.completed.v1.schema.json"
    )
    # A consumer that knows only the dataschema validates the data against it.
    validate(encoded["dataschema"].removeprefix(SCHEMA_BASE_URI), encoded["data"])


def test_every_domain_record_is_structured_mode_json_by_its_content_type_header() -> None:
    assert DOMAIN_CONTENT_TYPE == "application/cloudevents+json; charset=utf-8"
    assert domain_record_headers() == [("content-type", DOMAIN_CONTENT_TYPE.encode())]
    domain_record_headers().append(("x", b"y"))  # a producer adding to its copy changes no other
    assert len(domain_record_headers()) == 1


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
        pytest.param(lambda e: e.update(dataschema=""), "dataschema", id="dataschema-empty"),
        pytest.param(lambda e: e.update(dataschema=7), "dataschema", id="dataschema-not-text"),
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


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda e: e.pop("dataschema"), id="no-dataschema-as-before-it-was-added"),
        pytest.param(lambda e: e.update(dataschema=None), id="dataschema-null-is-unset"),
        pytest.param(
            lambda e: e.update(
                traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            ),
            id="extension",
        ),
    ],
)
def test_the_decoder_reads_older_events_and_events_with_extensions(mutate: object) -> None:
    payload = _encoded()
    mutate(payload)  # type: ignore[operator]
    assert decode_domain_event(json.dumps(payload).encode(), key=b"k").id == _event().id


def test_every_type_names_a_published_data_schema_whose_id_is_its_dataschema() -> None:
    envelope = json.loads((SCHEMAS / ENVELOPE).read_text())
    per_type = {
        block["if"]["properties"]["type"]["const"]: block["then"]["properties"]
        for block in envelope["allOf"]
    }
    assert sorted(per_type) == sorted(f"{EVENT_TYPE_PREFIX}{t}" for t in EVENT_TYPES)
    for name in EVENT_TYPES:
        uri = data_schema_uri(name)
        path = SCHEMAS / uri.removeprefix(SCHEMA_BASE_URI)
        assert path.is_file(), f"{name}: {uri} names no file in schemas/"
        assert json.loads(path.read_text())["$id"] == uri
        # The envelope requires that dataschema of the type and checks data against that file.
        assert per_type[f"{EVENT_TYPE_PREFIX}{name}"] == {
            "dataschema": {"const": uri},
            "data": {"$ref": str(path.relative_to(SCHEMAS))},
        }


def test_the_data_schemas_published_are_the_types_and_their_common_fields() -> None:
    published = {p.name.removesuffix(".v1.schema.json") for p in (SCHEMAS / "data").iterdir()}
    assert published == {*EVENT_TYPES, "common"}


def test_every_published_schema_has_the_id_of_its_path() -> None:
    for path in SCHEMAS.rglob("*.schema.json"):
        schema = json.loads(path.read_text())
        assert schema["$id"] == SCHEMA_BASE_URI + str(path.relative_to(SCHEMAS)), path
        jsonschema.Draft202012Validator.check_schema(schema)


EXTENSIONS_ALLOWED = [
    pytest.param(
        {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
        id="distributed-tracing",
    ),
    pytest.param({"partitionkey": "prod-eu/billing/Rollout/payments"}, id="partitioning"),
    pytest.param({"knativearrivaltime": "2026-08-20T09:16:54Z"}, id="timestamp-as-string"),
    pytest.param({"sequence": 7, "sampledrate": 1}, id="integers"),
    pytest.param({"min": -(2**31), "max": 2**31 - 1}, id="integer-bounds"),
    pytest.param({"sampled": True}, id="boolean"),
    pytest.param({"comexampleunset": None}, id="null-is-unset"),
    pytest.param({"comexample": ""}, id="empty-string"),
    pytest.param({"comexample": "zoë ✓ 事件"}, id="unicode-string"),
    pytest.param({"a1": "x", "9": "digits only"}, id="digits"),
    pytest.param({"comexamplelongername2026": "x"}, id="longer-than-20-a-should-not-only"),
]

EXTENSIONS_REFUSED = [
    pytest.param({"traceParent": "x"}, id="upper-case-name"),
    pytest.param({"trace_parent": "x"}, id="underscore-in-name"),
    pytest.param({"trace-parent": "x"}, id="hyphen-in-name"),
    pytest.param({"tracé": "x"}, id="name-beyond-ascii"),
    pytest.param({"": "x"}, id="empty-name"),
    pytest.param({"data_base64": "eyJ9"}, id="data-base64-beside-data"),
    pytest.param({"comexample": {"a": 1}}, id="object-value"),
    pytest.param({"comexample": [1]}, id="array-value"),
    pytest.param({"comexample": 1.5}, id="fraction"),
    pytest.param({"comexample": 2**31}, id="integer-past-int32"),
    pytest.param({"comexample": -(2**31) - 1}, id="integer-below-int32"),
    pytest.param({"comexample": "bell\u0007"}, id="control-character"),
    pytest.param({"comexample": "c1\u0085"}, id="c1-control-character"),
    pytest.param({"comexample": "\ufdd0"}, id="noncharacter"),
]


@pytest.mark.parametrize("extensions", EXTENSIONS_ALLOWED)
def test_the_schema_accepts_extension_attributes_the_spec_allows(
    extensions: dict[str, Any],
) -> None:
    validate(ENVELOPE, {**_encoded(), **extensions})


@pytest.mark.parametrize("extensions", EXTENSIONS_REFUSED)
def test_the_schema_refuses_extension_attributes_the_spec_forbids(
    extensions: dict[str, Any],
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(ENVELOPE, {**_encoded(), **extensions})


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda e: e.update(dataschema=data_schema_uri("rollout.paused")),
            id="another-types-dataschema",
        ),
        pytest.param(lambda e: e["data"].pop("pod_hash"), id="data-missing-a-field-of-its-type"),
        pytest.param(lambda e: e["data"].pop("cluster"), id="data-missing-a-common-field"),
        pytest.param(lambda e: e.update(specversion="0.3"), id="specversion"),
    ],
)
def test_the_schema_still_refuses_what_the_contract_does_not_allow(mutate: object) -> None:
    payload = _encoded()
    mutate(payload)  # type: ignore[operator]
    with pytest.raises(jsonschema.ValidationError):
        validate(ENVELOPE, payload)


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("Rollout", "rollouts"),
        ("Application", "applications"),
        ("Pod", "pods"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Canary", "canaries"),
        ("Gateway", "gateways"),
        ("HelmRelease", "helmreleases"),
        ("Kustomization", "kustomizations"),
    ],
)
def test_an_events_source_names_the_kinds_resource_as_kubernetes_does(
    kind: str, resource: str
) -> None:
    assert resource_of_kind(kind) == resource
    assert object_source(cluster="c", namespace="n", kind=kind, name="x") == (
        f"/clusters/c/namespaces/n/{resource}/x"
    )

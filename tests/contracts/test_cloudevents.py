"""Any producer's CloudEvent, read from a record in structured or binary mode; only what is no
CloudEvent at all (or a Herald type that breaks Herald's contract) is refused."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from herald_contracts import (
    CloudEvent,
    ContractError,
    decode_cloudevent,
    domain_record_headers,
    encode_domain_event,
    is_binary_mode,
)
from tests.support import domain_event

FOREIGN: dict[str, Any] = {
    "specversion": "1.0",
    "id": "deploy-42",
    "source": "https://ci.example.com/pipelines/7",
    "type": "com.example.app.deployed",
}
STRUCTURED = [("content-type", b"application/cloudevents+json; charset=utf-8")]


def _value(**changes: Any) -> bytes:
    return json.dumps({**FOREIGN, **changes}).encode()


def _binary(**attributes: str) -> list[tuple[str, bytes | None]]:
    return [(f"ce_{k}", v.encode()) for k, v in {**FOREIGN, **attributes}.items()]


def test_a_foreign_event_with_only_the_required_attributes_is_read() -> None:
    value = _value()
    event = decode_cloudevent(value, key=b"app-7", headers=STRUCTURED)
    assert (event.id, event.source, event.type, event.key) == (
        "deploy-42",
        "https://ci.example.com/pipelines/7",
        "com.example.app.deployed",
        "app-7",
    )
    assert (event.subject, event.time, event.data, event.herald) == (None, None, None, None)
    assert event.body == value


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"version": "1.2.3"}, id="object"),
        pytest.param([1, 2], id="array"),
        pytest.param("text", id="string"),
        pytest.param(7, id="number"),
        pytest.param(None, id="null"),
    ],
)
def test_data_may_be_any_json(data: Any) -> None:
    event = decode_cloudevent(_value(data=data), key=None)
    assert event.data == data
    assert event.key == ""


def test_optional_attributes_and_extensions_are_kept() -> None:
    value = _value(
        subject="payments",
        time="2026-11-30T07:00:00Z",
        datacontenttype="application/json",
        dataschema="https://example.com/deployed.json",
        tenant="acme",
        data={"ok": True},
    )
    event = decode_cloudevent(value, key=b"k")
    assert (event.subject, event.time) == ("payments", "2026-11-30T07:00:00Z")
    assert event.attributes["tenant"] == "acme"


def test_herald_events_are_read_with_their_domain_event() -> None:
    herald = domain_event(1)
    event = decode_cloudevent(
        encode_domain_event(herald), key=herald.key.encode(), headers=domain_record_headers()
    )
    assert event.herald == herald
    assert event == CloudEvent.of(herald)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(b"<xml/>", "not JSON", id="not-json"),
        pytest.param(None, "tombstone", id="tombstone"),
        pytest.param(b"[]", "not a JSON object", id="batch-array"),
        pytest.param(_value(specversion="0.3"), "specversion", id="specversion-0.3"),
        pytest.param(
            json.dumps({k: v for k, v in FOREIGN.items() if k != "source"}).encode(),
            "'source'",
            id="no-source",
        ),
        pytest.param(_value(id=""), "'id'", id="empty-id"),
        pytest.param(_value(type=7), "'type'", id="type-not-a-string"),
        pytest.param(_value(time="yesterday"), "'time'", id="time-not-rfc3339"),
        pytest.param(_value(subject=""), "'subject'", id="empty-subject"),
        pytest.param(
            _value(type="dev.herald.rollout.completed"), "'subject'", id="herald-type-not-herald"
        ),
    ],
)
def test_what_is_no_cloudevent_is_refused_with_the_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode_cloudevent(value, key=b"k", headers=STRUCTURED)


def test_binary_mode_json_data_becomes_the_structured_event() -> None:
    headers = [*_binary(subject="payments"), ("content-type", b"application/json")]
    assert is_binary_mode(headers)
    event = decode_cloudevent(b'{"version":"1.2.3"}', key=b"app-7", headers=headers)
    assert event.data == {"version": "1.2.3"}
    assert event.subject == "payments"
    assert json.loads(event.body) == {
        **FOREIGN,
        "subject": "payments",
        "datacontenttype": "application/json",
        "data": {"version": "1.2.3"},
    }


def test_binary_mode_other_data_is_carried_in_base64() -> None:
    headers = [*_binary(), ("content-type", b"application/octet-stream")]
    event = decode_cloudevent(b"\x00\xff", key=None, headers=headers)
    assert json.loads(event.body)["data_base64"] == base64.b64encode(b"\x00\xff").decode()


def test_binary_mode_without_data_has_none() -> None:
    event = decode_cloudevent(None, key=None, headers=_binary())
    assert "data" not in json.loads(event.body)


@pytest.mark.parametrize(
    ("headers", "value", "reason"),
    [
        pytest.param(
            [*_binary(), ("content-type", b"application/json")],
            b"{not json",
            "not the JSON",
            id="json-data-not-json",
        ),
        pytest.param(_binary(specversion="0.3"), b"{}", "specversion", id="specversion-0.3"),
        pytest.param(
            [h for h in _binary() if h[0] != "ce_type"], b"{}", "'type'", id="no-type-header"
        ),
        pytest.param([*_binary(), ("ce_subject", b"\xff")], b"{}", "not UTF-8", id="not-utf-8"),
    ],
)
def test_binary_mode_records_that_are_no_cloudevent_are_refused(
    headers: list[tuple[str, bytes | None]], value: bytes, reason: str
) -> None:
    with pytest.raises(ContractError, match=reason):
        decode_cloudevent(value, key=None, headers=headers)


def test_a_structured_content_type_wins_over_ce_headers() -> None:
    headers = [*STRUCTURED, *_binary(type="com.example.other")]
    assert not is_binary_mode(headers)
    assert decode_cloudevent(_value(), key=None, headers=headers).type == FOREIGN["type"]

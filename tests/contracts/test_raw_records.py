from __future__ import annotations

import json

import jsonschema
import pytest

from herald_contracts import (
    ContractError,
    RawRecord,
    WatchType,
    decode_raw_record,
    encode_raw_record,
)
from tests.support import events_api_event, rollout_event, validate


def _record() -> RawRecord:
    event = rollout_event("RolloutCompleted", "Rollout completed update to revision 2 (abc): x")
    del event["metadata"]["managedFields"]
    return RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:16:54.1Z",
        object=event,
    )


def test_encoded_record_matches_the_published_schema() -> None:
    validate("kube-event-record.v1.schema.json", json.loads(encode_raw_record(_record())))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"reportingComponent": None}, id="reportingComponent-null"),
        pytest.param({"source": {"component": 3}}, id="source.component-a-number"),
        pytest.param({"eventTime": "yesterday"}, id="eventTime-not-a-time"),
        pytest.param({"series": {"count": "2"}}, id="series.count-a-string"),
    ],
)
def test_the_schema_takes_both_writers_shapes_and_states_the_types_the_event_view_reads(
    fields: dict[str, object],
) -> None:
    event = events_api_event("RolloutResumed", "Rollout is resumed", series_count=2)
    del event["metadata"]["managedFields"]
    record = RawRecord("prod-eu", WatchType.MODIFIED, "2026-08-20T09:16:54Z", event)
    for shape in (_record(), record):
        published = json.loads(encode_raw_record(shape))
        validate("kube-event-record.v1.schema.json", published)
        published["object"] |= fields
        with pytest.raises(jsonschema.ValidationError):
            validate("kube-event-record.v1.schema.json", published)


def test_record_round_trips_unchanged() -> None:
    record = _record()
    assert decode_raw_record(encode_raw_record(record)) == record


def test_key_names_cluster_namespace_kind_and_name_of_the_involved_object() -> None:
    assert _record().key == "prod-eu/billing/Rollout/payments"


def test_key_of_an_event_without_involved_object_is_still_stable() -> None:
    record = RawRecord("c", WatchType.ADDED, "2026-01-01T00:00:00Z", {"metadata": {}})
    assert record.key == "c///"


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        pytest.param(b"\xff\xfe", "not UTF-8", id="not-utf8"),
        pytest.param(b"{", "not JSON", id="truncated"),
        pytest.param(b"[]", "not a JSON object", id="array"),
        pytest.param(b'{"n": NaN}', "NaN is not a JSON number", id="nan"),
        pytest.param(b'{"n": ' + b"9" * 5000 + b"}", "not JSON Herald can read", id="huge-integer"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="deep-nesting"),
        pytest.param('{"n": 1}'.encode("utf-16"), "not UTF-8", id="utf-16"),
        pytest.param(None, "tombstone", id="tombstone"),
        pytest.param(
            b'{"watch_type":"ADDED","collected_at":"x","object":{}}', "'cluster'", id="no-cluster"
        ),
        pytest.param(
            b'{"cluster":"c","watch_type":"BOOKMARK","collected_at":"x","object":{}}',
            "'watch_type'",
            id="bookmark-is-not-a-record",
        ),
        pytest.param(
            b'{"cluster":"c","watch_type":"ADDED","collected_at":"2026-01-01T00:00:00Z","object":[]}',
            "'object'",
            id="object-not-dict",
        ),
        pytest.param(
            b'{"cluster":"c","watch_type":"ADDED","collected_at":"yesterday","object":{}}',
            "'collected_at' must be an RFC 3339 date-time",
            id="collected-at-not-a-time",
        ),
        pytest.param(
            b'{"cluster":"c","watch_type":"ADDED","collected_at":1767225600,"object":{}}',
            "'collected_at' must be an RFC 3339 date-time",
            id="collected-at-a-number",
        ),
    ],
)
def test_undecodable_records_are_refused_with_the_reason(
    payload: bytes | None, complaint: str
) -> None:
    with pytest.raises(ContractError, match=complaint):
        decode_raw_record(payload)


@pytest.mark.parametrize(
    ("obj", "complaint"),
    [
        pytest.param({"involvedObject": {}}, "no metadata.uid", id="no-metadata"),
        pytest.param(
            {"metadata": {"name": "x"}, "involvedObject": {}}, "no metadata.uid", id="no-uid"
        ),
        pytest.param({"metadata": {"uid": "u"}}, "no involvedObject", id="no-involved-object"),
    ],
)
def test_valid_json_that_is_not_an_event_is_refused(obj: dict[str, object], complaint: str) -> None:
    payload = {
        "cluster": "c",
        "watch_type": "ADDED",
        "collected_at": "2026-01-01T00:00:00Z",
        "object": obj,
    }
    with pytest.raises(ContractError, match=complaint):
        decode_raw_record(json.dumps(payload).encode())

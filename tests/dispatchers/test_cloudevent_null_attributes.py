"""CloudEvents the JSON format allows that the dispatcher must deliver: a null attribute is unset
(JSON event format 1.0, 2.2; found by the review of issue 12)."""

from __future__ import annotations

import json

import pytest

from dispatchers.intake import Admitted, admit

STRUCTURED = [("content-type", b"application/cloudevents+json; charset=utf-8")]


def test_the_json_formats_own_example_with_a_null_subject_is_delivered() -> None:
    # CloudEvents JSON format 1.0, section 3.2, the example with JSON data, verbatim: "When decoding
    # attributes and a `null` value is encountered, it MUST be treated as the equivalent of unset or
    # omitted" (section 2.2). docs/contracts.md: only records that are no CloudEvent are set aside.
    example = {
        "specversion": "1.0",
        "type": "com.example.someevent",
        "source": "/mycontext",
        "subject": None,
        "id": "C234-1234-1234",
        "time": "2018-04-05T17:31:00Z",
        "comexampleextension1": "value",
        "comexampleothervalue": 5,
        "datacontenttype": "application/json",
        "data": {"appinfoA": "abc", "appinfoB": 123, "appinfoC": True},
    }
    admitted = admit(json.dumps(example).encode(), key=b"k", headers=STRUCTURED)
    assert isinstance(admitted, Admitted), admitted
    assert admitted.event.subject in (None, "")


@pytest.mark.parametrize("attribute", ["time", "datacontenttype", "dataschema"])
def test_an_optional_attribute_set_to_null_counts_as_unset(attribute: str) -> None:
    event = {
        "specversion": "1.0",
        "type": "com.example.deployed",
        "source": "https://ci.example.com/pipelines/7",
        "id": "6a0f2f5e-8a3e-4a59-9d1c-3d7d2f0e9b11",
        "subject": "payments",
        "time": "2026-11-30T07:00:00Z",
        "data": {"version": "1.0.3"},
        attribute: None,
    }
    admitted = admit(json.dumps(event).encode(), key=b"payments", headers=STRUCTURED)
    assert isinstance(admitted, Admitted), admitted

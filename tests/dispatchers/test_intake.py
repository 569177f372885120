"""The dispatcher's intake: which domain-topic records it can store and send, and why it sets the
others aside. Each refused kind here used to stop the dispatcher (the insert or the send raised),
and with it every subscription, on every restart."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatchers.intake import Admitted, Refused, admit
from herald_contracts import encode_domain_event
from tests.support import domain_event

GOOD = domain_event(1).to_cloudevent()
KEY = b"c/billing/Rollout/payments"


def _json(**changes: Any) -> bytes:
    return json.dumps({**GOOD, **changes}).encode()


def _with_data(raw: bytes) -> bytes:
    """GOOD with `data` replaced by the JSON text `raw`, byte for byte."""
    head = json.dumps({k: v for k, v in GOOD.items() if k != "data"})[:-1]
    return head.encode() + b', "data": ' + raw + b"}"


def test_a_message_with_nul_is_admitted_with_the_body_unchanged() -> None:
    event = domain_event(1)
    event.data["source_message"] = "decrypt: unexpected byte \x00 at offset 0 (PK\x03\x04\x00)"
    body = encode_domain_event(event)
    assert b"\\u0000" in body
    admitted = admit(body, key=KEY)
    assert isinstance(admitted, Admitted)
    assert admitted.body == body
    assert admitted.event.data["source_message"] == event.data["source_message"]


@pytest.mark.parametrize(
    "event_type", ["dev.herald.flagger.promoted", "dev.herald.rollout.exploded", "com.example.x"]
)
def test_a_type_the_dispatcher_never_heard_of_is_admitted(event_type: str) -> None:
    """A user's rule pack, a newer release's type, another producer's: the subscriptions decide."""
    admitted = admit(_json(type=event_type), key=KEY)
    assert isinstance(admitted, Admitted)
    assert admitted.event.type == event_type


@pytest.mark.parametrize(
    ("value", "key", "kind", "reason"),
    [
        pytest.param(b"not json", KEY, "undecodable", "not JSON", id="not-json"),
        pytest.param(None, KEY, "undecodable", "tombstone", id="tombstone"),
        pytest.param(
            _with_data(b'{"x": NaN}'), KEY, "undecodable", "NaN is not a JSON number", id="nan"
        ),
        pytest.param(
            _with_data(b'{"x": [-Infinity]}'),
            KEY,
            "undecodable",
            "Infinity is not a JSON number",
            id="infinity",
        ),
        pytest.param(
            _with_data(b'{"n": ' + b"7" * 5000 + b"}"),
            KEY,
            "undecodable",
            "4300 digits",
            id="integer-past-4300-digits",
        ),
        pytest.param(
            _with_data(b'{"n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
            KEY,
            "undecodable",
            "nested too deeply",
            id="nested-100000-deep",
        ),
        pytest.param(
            json.dumps(GOOD).encode("utf-16"), KEY, "undecodable", "not UTF-8", id="utf-16"
        ),
        pytest.param(
            json.dumps(GOOD).encode("utf-32"), KEY, "undecodable", "not UTF-8", id="utf-32"
        ),
        pytest.param(_json(id="a\x00b"), KEY, "undeliverable", "webhook-id", id="id-nul"),
        pytest.param(_json(id="a\nb"), KEY, "undeliverable", "webhook-id", id="id-line-break"),
        pytest.param(_json(id="事件-1"), KEY, "undeliverable", "webhook-id", id="id-not-latin-1"),
        pytest.param(_json(id="é-1"), KEY, "undeliverable", "webhook-id", id="id-latin-1"),
        pytest.param(_json(id="a b"), KEY, "undeliverable", "webhook-id", id="id-space"),
        pytest.param(_json(id="\ud800"), KEY, "undeliverable", "webhook-id", id="id-surrogate"),
        pytest.param(
            _json(), b"c/billing/Rollout/pay\x00ments", "undeliverable", "control", id="key-nul"
        ),
        pytest.param(_json(), b"c/billing/\x1b[31m", "undeliverable", "control", id="key-escape"),
        pytest.param(_json(), b"\xff\xfe", "undecodable", "UTF-8", id="key-not-utf-8"),
    ],
)
def test_records_the_dispatcher_cannot_store_or_send_are_refused_with_the_reason(
    value: bytes | None, key: bytes, kind: str, reason: str
) -> None:
    refused = admit(value, key=key)
    assert isinstance(refused, Refused), refused
    assert refused.kind == kind
    assert reason in refused.reason


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"m": "\ud800 lone"}, id="lone-surrogate"),
        pytest.param({"m\x00": "nul in a name"}, id="nul-in-a-name"),
        pytest.param({"n": 10**300, "f": 1e308}, id="big-numbers"),
        pytest.param({"m": "\u2028\u2029\ufeff\U0001f680"}, id="unusual-characters"),
    ],
)
def test_legal_but_unusual_data_is_admitted(data: dict[str, Any]) -> None:
    body = _json(data=data)
    admitted = admit(body, key=KEY)
    assert isinstance(admitted, Admitted), admitted
    assert admitted.body == body


@settings(max_examples=300, deadline=None)
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    ),
    event_id=st.text(min_size=1, max_size=40),
    key=st.binary(max_size=40),
)
def test_any_record_is_admitted_or_refused_with_a_reason_never_raises(
    data: Any, event_id: str, key: bytes
) -> None:
    value = json.dumps({**GOOD, "id": event_id, "data": {"x": data}}).encode()
    verdict = admit(value, key=key)
    if isinstance(verdict, Admitted):
        assert verdict.body == value
        assert verdict.event.id.isascii()
        assert verdict.event.id.isprintable()
        assert " " not in verdict.event.id
        assert "\x00" not in verdict.event.key
    else:
        assert verdict.reason
        assert verdict.kind


FOREIGN = {
    "specversion": "1.0",
    "id": "deploy-42",
    "source": "https://ci.example.com/pipelines/7",
    "type": "com.example.app.deployed",
}


def test_another_producers_event_is_admitted_with_its_body() -> None:
    body = json.dumps({**FOREIGN, "data": ["any", "json"]}).encode()
    admitted = admit(body, key=b"app-7")
    assert isinstance(admitted, Admitted), admitted
    assert admitted.body == body
    assert admitted.event.type == "com.example.app.deployed"


def test_a_binary_mode_record_is_admitted_as_its_structured_event() -> None:
    headers = [(f"ce_{k}", v.encode()) for k, v in FOREIGN.items()]
    admitted = admit(
        b'{"v": 1}', key=None, headers=[*headers, ("content-type", b"application/json")]
    )
    assert isinstance(admitted, Admitted), admitted
    assert json.loads(admitted.body) == {
        **FOREIGN,
        "datacontenttype": "application/json",
        "data": {"v": 1},
    }


@pytest.mark.parametrize(
    ("changes", "kind", "reason"),
    [
        pytest.param({"id": "事件-1"}, "undeliverable", "webhook-id", id="id-not-ascii"),
        pytest.param({"specversion": "0.3"}, "undecodable", "specversion", id="specversion-0.3"),
        pytest.param({"source": None}, "undecodable", "'source'", id="no-source"),
        pytest.param({"tenant": 1e999}, "undecodable", "too large", id="extension-infinite"),
    ],
)
def test_foreign_records_refused_are_no_cloudevent_or_cannot_be_sent(
    changes: dict[str, Any], kind: str, reason: str
) -> None:
    value = json.dumps({k: v for k, v in {**FOREIGN, **changes}.items() if v is not None})
    refused = admit(value.replace("Infinity", "1e999").encode(), key=b"k")
    assert isinstance(refused, Refused), refused
    assert (refused.kind, reason in refused.reason) == (kind, True)

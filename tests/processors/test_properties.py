"""Properties of the processor's pure core over generated inputs (hypothesis): the raw decoder and the
interpreter never raise on what they are given, every event the interpreter emits is one consumers
can read, and bad records mixed into a stream change nothing but the dead letters."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from herald_contracts import (
    ContractError,
    RawRecord,
    WatchType,
    decode_domain_event,
    decode_raw_record,
    encode_domain_event,
    encode_raw_record,
)
from processors.interpreting import Abort, RolloutState, interpret
from processors.packs import builtin_catalogue
from processors.processing import Processed, process
from processors.state import Keeper
from tests.support import validate

# -- strategies -----------------------------------------------------------------------------------

text = st.text(max_size=40)
wild_text = st.one_of(
    text,
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),  # surrogates, U+0000
    st.just("\u0000"),
    st.just("\ud800"),
    st.text(min_size=5000, max_size=6000, alphabet="xy/"),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | wild_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)
times = st.one_of(
    st.just("2026-08-20T09:16:53Z"),
    st.just("2026-08-20T09:16:53.123456+02:00"),
    st.just("yesterday"),
    st.just("2026-02-30T09:16:53Z"),
    st.just("2026-08-20T23:59:60Z"),
    st.just(""),
    json_values,
)
numbers = st.one_of(
    st.integers(0, 30).map(str),
    st.just("9" * 30),
    st.just("9" * 5000),
    st.just("٣"),  # an Arabic-Indic digit: \d matches it
)


@st.composite
def messages(draw: st.DrawFn, reason: str) -> str:
    """A message for a reason: a catalogue format filled with wild values, or anything at all."""
    formats = {
        "RolloutUpdated": "Rollout updated to revision {n}",
        "RolloutStepCompleted": "Rollout step {n}/{n} completed ({t})",
        "RolloutPaused": "Rollout is paused ({t})",
        "RolloutResumed": "Rollout is resumed",
        "RolloutAborted": "Rollout aborted update to revision {n}: {t}",
        "RolloutCompleted": "Rollout completed update to revision {n} ({t}): {t}",
        "SetStepIndex": "Set Step Index to {n}",
        "SettingStableRS": "Completed all steps",
        "ResourceUpdated": "Updated health status: {t} -> {t} ({t})",
        "OperationStarted": "{t} initiated partial sync to {t} (" + "a" * 40 + ")",
        "OperationCompleted": "Sync operation to {t} failed: {t}",
        "ResourceActionRan": "{t} ran action {t} on resource {t}",
    }
    template = formats.get(reason)
    if template is None or draw(st.integers(0, 3)) == 0:
        return draw(wild_text)
    prefix = draw(st.sampled_from(["", "(combined from similar events): "]))
    return prefix + template.format_map(
        _Fill(lambda kind: draw(numbers if kind == "n" else wild_text))
    )


class _Fill(dict[str, str]):
    def __init__(self, fill: Any) -> None:
        super().__init__()
        self._fill = fill

    def __missing__(self, key: str) -> str:
        return str(self._fill(key))


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Event-shaped JSON: mostly Argo Events of the catalogue, any field possibly wild."""
    rule = draw(st.sampled_from(builtin_catalogue().rules))
    reason = draw(st.sampled_from([rule.reason, rule.reason, rule.reason, "Pulled"]))
    rollout = rule.source.kind == "Rollout"
    kind = draw(st.sampled_from(["Rollout" if rollout else "Application"] * 4 + ["Pod"]))
    component = draw(
        st.sampled_from(
            ["rollouts-controller"] * 3 + ["kubelet"]
            if rollout
            else ["argocd-application-controller", "argocd-server", "kubelet"]
        )
    )

    def maybe(good: Any, bad: st.SearchStrategy[Any] = json_values) -> Any:
        """Mostly the value of a real Event, sometimes anything."""
        return good if draw(st.integers(0, 4)) else draw(bad)

    event: dict[str, Any] = {
        "metadata": {
            "uid": maybe("uid-1", st.sampled_from(["uid-2", "u" * 300, "uid/3"])),
            "resourceVersion": maybe("1"),
            "creationTimestamp": draw(times),
            "annotations": maybe({"dest-server": "https://kubernetes.default.svc"}),
        },
        "involvedObject": {
            "kind": kind,
            "apiVersion": maybe("argoproj.io/v1alpha1"),
            "namespace": maybe("billing"),
            "name": maybe("payments", st.sampled_from(["", "a/b", "n" * 300, "payments\u0000"])),
        },
        "reason": maybe(reason),
        "message": draw(messages(reason)),
        **draw(emitted_by(component)),
        "lastTimestamp": draw(times),
        "eventTime": draw(times),
        "firstTimestamp": draw(times),
        "count": maybe(1, st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False))),
    }
    if draw(st.booleans()):
        event["series"] = maybe({"count": 2, "lastObservedTime": draw(times)})
    return event


def emitted_by(component: str) -> st.SearchStrategy[dict[str, Any]]:
    """Where the Event names its emitter: `source` (core/v1 writers, with or without
    `reportingComponent`) or `reportingComponent` alone (events.k8s.io/v1 writers)."""
    return st.sampled_from(
        [
            {"source": {"component": component}},
            {"source": {"component": component}, "reportingComponent": component},
            {"source": {}, "reportingComponent": component},
        ]
    )


def raw_record(event: dict[str, Any], *, cluster: str = "prod-eu") -> RawRecord:
    return RawRecord(
        cluster=cluster,
        watch_type=WatchType.MODIFIED,
        collected_at="2026-08-20T09:17:00Z",
        object=event,
    )


# -- the raw decoder ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())))
def test_decoding_a_raw_record_raises_only_contract_errors_on_anything_small(data: bytes) -> None:
    with contextlib.suppress(ContractError):
        decode_raw_record(data)


@pytest.mark.parametrize("data", [b'{"cluster": ' + b"1" * 5000 + b"}", b"[" * 100_000])
def test_decoding_a_raw_record_raises_only_contract_errors_on_json_python_cannot_parse(
    data: bytes,
) -> None:
    with contextlib.suppress(ContractError):
        decode_raw_record(data)


# -- the interpreter ------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events(),
    st.one_of(st.none(), st.integers(0, 3)),
    st.builds(RolloutState, st.sampled_from(Abort), st.one_of(st.none(), st.integers(1, 9))),
)
def test_the_interpreter_never_raises_and_emits_only_events_consumers_can_read(
    event: dict[str, Any], last_n: int | None, rollout: RolloutState
) -> None:
    outcome = interpret(raw_record(event), last_n=last_n, rollout=rollout)
    assert not (outcome.events and outcome.refused)
    for domain_event in outcome.events:
        encoded = encode_domain_event(domain_event)
        decoded = decode_domain_event(encoded, key=domain_event.key.encode())
        assert decoded == domain_event
        validate("deploy-event.v1.schema.json", json.loads(encoded))
        assert len(encoded) < 64 * 1024  # far below any broker's record limit


# -- a stream with bad records mixed in -----------------------------------------------------------

ROLLOUT_MESSAGES = [
    ("RolloutUpdated", "Rollout updated to revision 3"),
    ("RolloutStepCompleted", "Rollout step 1/2 completed (setWeight: 50)"),
    ("RolloutAborted", "Rollout aborted update to revision 3"),
    ("RolloutAborted", 'ReplicaSet "payments-6f8b" has timed out progressing.'),
    ("RolloutResumed", "Rollout is resumed"),
    ("RolloutCompleted", "Rollout completed update to revision 3 (6f8b): done"),
]


@st.composite
def good_records(draw: st.DrawFn) -> bytes:
    reason, message = draw(st.sampled_from(ROLLOUT_MESSAGES))
    name = draw(st.sampled_from(["payments", "orders"]))
    event = {
        "metadata": {"uid": draw(st.sampled_from(["e1", "e2", "e3", "e4"])) + name},
        "involvedObject": {
            "kind": "Rollout",
            "apiVersion": "argoproj.io/v1alpha1",
            "namespace": "shop",
            "name": name,
        },
        "reason": reason,
        "message": message,
        "source": {"component": "rollouts-controller"},
        "lastTimestamp": "2026-08-20T09:16:53Z",
        "count": draw(st.integers(1, 3)),
    }
    return encode_raw_record(raw_record(event))


REFUSED = encode_raw_record(
    raw_record(
        {
            "metadata": {"uid": "bad"},
            "involvedObject": {"kind": "Rollout", "apiVersion": "argoproj.io/v1", "name": "a/b"},
            "reason": "RolloutResumed",
            "message": "Rollout is resumed",
            "source": {"component": "rollouts-controller"},
        }
    )
)
LONE_SURROGATE = (  # valid JSON, but "\ud800" is no character UTF-8 can carry
    b'{"cluster":"c","watch_type":"ADDED","collected_at":"2026-08-20T09:17:00Z","object":'
    b'{"metadata":{"uid":"s"},"involvedObject":{"kind":"Rollout","apiVersion":"argoproj.io/v1",'
    b'"name":"x"},"reason":"RolloutPaused","message":"Rollout is paused (\\ud800)",'
    b'"source":{"component":"rollouts-controller"}}}'
)
bad_records = st.one_of(
    st.binary(max_size=60),
    st.just(None),  # a tombstone
    json_values.map(lambda v: json.dumps(v).encode()),
    st.just(b'{"cluster": "c", "watch_type": "ADDED", "collected_at": "yesterday", "object": {}}'),
    st.just(REFUSED),
    st.just(LONE_SURROGATE),
    st.just(b'{"cluster": ' + b"1" * 5000 + b"}"),
    st.just(b"[" * 5000),
)


def run_stream(values: list[bytes | None]) -> list[Processed]:
    state = Keeper({}, {}, retention_s=86_400)
    return [
        process(value, state=state, partition=0, offset=offset, at=1_000.0, committed=None)
        for offset, value in enumerate(values)
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(good_records(), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(0, 25), bad_records), max_size=10),
)
def test_bad_records_mixed_into_a_stream_are_dead_lettered_once_and_change_nothing_else(
    good: list[bytes], bad: list[tuple[int, bytes | None]]
) -> None:
    mixed: list[bytes | None] = list(good)
    for position, value in sorted(bad, key=lambda b: b[0], reverse=True):
        mixed.insert(min(position, len(mixed)), value)
    clean = run_stream(list(good))
    assume(all(p.dead_letter is None for p in clean))
    results = run_stream(mixed)
    assert [e.id for p in results for e in p.events] == [e.id for p in clean for e in p.events]
    assert sum(p.dead_letter is not None for p in results) == len(bad)
    assert all(p.failure is None for p in results)  # dead-lettered by rule, not by a crash

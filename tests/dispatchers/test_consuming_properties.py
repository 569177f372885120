"""Property test of the dispatcher's consume-and-store path with arbitrary bad input: malformed
records mixed into valid domain events, through the real `ConsumingLoop` (in-memory record source
and dead-letter sink) into the real Postgres store.

Whatever the bad records, the loop never raises; every valid event is stored once, with the exact
bytes read, and with exactly the deliveries its subscriptions' filters give it (as if the bad records
had not been there), in stream order per object; each bad record is set aside exactly once, with a
reason and the kind expected of it; the offsets are committed past everything."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatchers.consuming import ConsumedRecord, ConsumingLoop
from dispatchers.matching import SubscriptionFilter, matches
from dispatchers.postgres import Store
from herald_contracts import EVENT_TYPES, DomainEvent, object_source
from herald_runtime.backoff import Backoff
from tests.dispatchers.test_consuming_loop import FakeSink, FakeSource

NOW = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FILTERS = (
    SubscriptionFilter(),
    SubscriptionFilter(event_types=("rollout.*",)),
    SubscriptionFilter(clusters=("c1",), names=("a", "b")),
    SubscriptionFilter(
        event_types=("application.health_changed", "rollout.completed"), namespaces=("shop",)
    ),
)
TYPES = (*EVENT_TYPES, "flagger.promoted", "acme.widget.ready")
"""The built-in packs' types and types of packs the dispatcher has never heard of (a user's)."""
TIMES = ("2026-08-20T09:16:53Z", "2026-08-20T11:16:53.123456+02:00", "0001-01-01T00:00:00Z")
VISIBLE_ASCII = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
# Strings a CloudEvent may carry that Postgres text cannot hold: sent unchanged, stored replaced.
AWKWARD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfffy", "\u2028\ufeff\U0001f680", ""]),
)


@dataclass(frozen=True)
class Item:
    key: bytes | None
    value: bytes | None
    kind: str | None
    """None: a valid event; else the kind it must be set aside as."""
    event: DomainEvent | None = None


def _encoded(cloudevent: dict[str, Any], *, ascii_only: bool) -> bytes:
    # Lone surrogates can only travel as \u escapes (they are not UTF-8).
    return json.dumps(cloudevent, ensure_ascii=ascii_only).encode()


@st.composite
def valid_events(draw: st.DrawFn, prefix: str, n: int) -> Item:
    cluster = draw(st.sampled_from(["c1", "c2"]))
    namespace = draw(st.sampled_from(["billing", "shop"]))
    kind = draw(st.sampled_from(["Rollout", "Application"]))
    name = draw(st.sampled_from(["a", "b", "c"]))
    data: dict[str, Any] = {"cluster": cluster, "namespace": namespace, "name": name}
    for field in draw(st.lists(st.sampled_from(["message", "step", "odd", "huge"]), unique=True)):
        if field == "message":
            data["source_message"] = draw(AWKWARD_TEXT)
        elif field == "step":
            data["step_index"] = draw(st.integers(-(10**30), 10**30))
        elif field == "odd":
            data[draw(AWKWARD_TEXT)] = draw(
                st.none() | st.floats(allow_nan=False, allow_infinity=False) | AWKWARD_TEXT
            )
        else:
            data["detail"] = "\x00\ud800" + "x" * 300_000  # a huge message, still an event
    event = DomainEvent(
        id=f"{prefix}-{n}-" + draw(st.text(VISIBLE_ASCII, max_size=12)),
        source=object_source(cluster=cluster, namespace=namespace, kind=kind, name=name)
        + draw(st.sampled_from(["", "\x00", "\udcff"])),
        type="dev.herald." + draw(st.sampled_from(TYPES)),
        subject=name + draw(AWKWARD_TEXT),
        time=draw(st.sampled_from(TIMES)),
        data=data,
        key=f"{cluster}/{namespace}/{kind}/{name}",
    )
    ascii_only = draw(st.booleans()) or any(
        "\ud800" <= c <= "\udfff" for c in json.dumps(event.to_cloudevent(), ensure_ascii=False)
    )
    return Item(
        event.key.encode(),
        _encoded(event.to_cloudevent(), ascii_only=ascii_only),
        None,
        event,
    )


KEY = b"c1/billing/Rollout/a"
UNDECODABLE, UNDELIVERABLE, REFUSED = "undecodable", "undeliverable", "refused_by_database"


def _json(event: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**event, **changes}).encode()


def _with_data(event: dict[str, Any], raw: bytes) -> bytes:
    """`event` with its `data` replaced by the JSON text `raw`, byte for byte."""
    head = json.dumps({k: v for k, v in event.items() if k != "data"})[:-1].encode()
    return head + b', "data": ' + raw + b"}"


Fault = Callable[[st.DrawFn, dict[str, Any], random.Random], Item]
BAD_TIMES = st.sampled_from(["2026-13-01T00:00:00Z", "2026-08-20 09:16:53", "0000-01-01T00:00:00Z"])
FAULTS: dict[str, Fault] = {
    "random bytes": lambda draw, good, rng: Item(
        draw(st.binary(max_size=20) | st.none()), draw(st.binary(max_size=200)), UNDECODABLE
    ),
    "not json": lambda draw, good, rng: Item(
        KEY, draw(st.text(max_size=50)).encode() + b"}{", UNDECODABLE
    ),
    "not an object": lambda draw, good, rng: Item(
        KEY,
        json.dumps(draw(st.lists(st.integers()) | st.integers() | st.text() | st.none())).encode(),
        UNDECODABLE,
    ),
    "no specversion": lambda draw, good, rng: Item(
        KEY,
        json.dumps({k: v for k, v in good.items() if k != "specversion"}).encode(),
        UNDECODABLE,
    ),
    "bad time": lambda draw, good, rng: Item(
        KEY, _json(good, time=draw(BAD_TIMES | st.text(max_size=10) | st.integers())), UNDECODABLE
    ),
    "wrong type": lambda draw, good, rng: Item(
        KEY,
        _json(
            good,
            **{
                draw(st.sampled_from(["id", "source", "type", "subject", "data"])): draw(
                    st.integers() | st.lists(st.integers(), max_size=2) | st.none()
                )
            },
        ),
        UNDECODABLE,
    ),
    # (A type the dispatcher has never heard of is no fault: another producer's CloudEvent, or a
    # Herald type of a pack it does not know, is delivered to the subscriptions that name it; see
    # `valid_events`. A type Postgres cannot hold is.)
    "type with nul": lambda draw, good, rng: Item(
        KEY,
        _json(good, type=draw(st.sampled_from(["dev.herald.x\x00", "com.example.a\x00b"]))),
        REFUSED,
    ),
    "tombstone": lambda draw, good, rng: Item(KEY, None, UNDECODABLE),
    "key not utf-8": lambda draw, good, rng: Item(b"c1/\xff\xfe", _json(good), UNDECODABLE),
    "key control": lambda draw, good, rng: Item(
        draw(st.sampled_from([KEY + b"\x00", b"c1/\x1b[31m", b"a\nb"])), _json(good), UNDELIVERABLE
    ),
    "id not visible ascii": lambda draw, good, rng: Item(
        KEY,
        _json(good, id=good["id"] + draw(st.sampled_from(["\x00", " ", "\n", "\u00e9", "\ud800"]))),
        UNDELIVERABLE,
    ),
    # Random hex does not compress: too large for the index on events' ids, or on deliveries'
    # object keys.
    "id huge": lambda draw, good, rng: Item(
        KEY, _json(good, id=good["id"] + rng.randbytes(4000).hex()), REFUSED
    ),
    "key huge": lambda draw, good, rng: Item(
        rng.randbytes(4000).hex().encode(), _json(good), REFUSED
    ),
    "nan": lambda draw, good, rng: Item(KEY, _with_data(good, b'{"x": NaN}'), UNDECODABLE),
    "number too large": lambda draw, good, rng: Item(
        KEY, _with_data(good, b'{"x": [1e999]}'), UNDECODABLE
    ),
    "integer too long": lambda draw, good, rng: Item(
        KEY, _with_data(good, b'{"n": ' + b"7" * 5000 + b"}"), UNDECODABLE
    ),
    "nested too deep": lambda draw, good, rng: Item(
        KEY, _with_data(good, b'{"n": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), UNDECODABLE
    ),
    "body not utf-8": lambda draw, good, rng: Item(
        KEY, _with_data(good, b'{"m": "caf\xe9"}'), UNDECODABLE
    ),
    "body utf-16": lambda draw, good, rng: Item(
        KEY, json.dumps(good).encode("utf-16"), UNDECODABLE
    ),
}


@st.composite
def bad_records(draw: st.DrawFn, prefix: str, n: int) -> Item:
    """A record the dispatcher cannot handle, and the kind it must be set aside as."""
    good = {
        "specversion": "1.0",
        "id": f"{prefix}-bad-{n}",
        "source": "/clusters/c1/namespaces/billing/rollouts/a",
        "type": "dev.herald.rollout.completed",
        "subject": "a",
        "time": "2026-08-20T09:16:53Z",
        "datacontenttype": "application/json",
        "data": {"cluster": "c1", "namespace": "billing", "name": "a"},
    }
    # Seeded, not drawn byte by byte: shrinking must not make the huge values compressible.
    rng = random.Random(draw(st.integers(0, 2**32)))
    return FAULTS[draw(st.sampled_from(sorted(FAULTS)))](draw, good, rng)


@st.composite
def streams(draw: st.DrawFn) -> list[Item]:
    prefix = uuid.uuid4().hex[:8]  # fresh ids for every example
    items: list[Item] = []
    for n in range(draw(st.integers(0, 25))):
        choice = draw(st.sampled_from(["valid", "valid", "bad", "bad", "repeat"]))
        valid = [i for i in items if i.kind is None]
        if choice == "repeat" and valid:  # a redelivered record: absorbed
            items.append(draw(st.sampled_from(valid)))
        elif choice == "bad":
            items.append(draw(bad_records(prefix, n)))
        else:
            items.append(draw(valid_events(prefix, n)))
    return items


def _reset(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE attempts, deliveries, events, subscriptions")


def _rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=streams(), max_batch=st.integers(1, 30))
def test_bad_records_are_set_aside_once_and_the_valid_events_stored_as_without_them(
    store: Store, database_url: str, stream: list[Item], max_batch: int
) -> None:
    _reset(database_url)  # the database is the test's; each example starts from nothing
    subscriptions = [
        store.subscriptions.create(
            url="http://127.0.0.1:9/h", secrets=[SECRET], filter=f, ordered=True
        )
        for f in FILTERS
    ]
    disabled = store.subscriptions.create(
        url="http://127.0.0.1:9/off", secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
    )
    store.subscriptions.set_enabled(disabled, enabled=False, reason="test", now=NOW)
    records = [
        ConsumedRecord("domain", 0, offset, item.key, item.value)
        for offset, item in enumerate(stream)
    ]
    source, sink, kinds = FakeSource(records), FakeSink(), []
    loop = ConsumingLoop(
        source=source,
        dead_letters=sink,
        store=store.intake,
        now=lambda: NOW,
        max_batch=max_batch,
        on_dead_letter=kinds.append,
        backoff=Backoff(base_s=0.001, cap_s=0.001),
    )
    for _ in range(len(records) + 1):
        if source.committed == len(records):
            break
        loop.run_once(timeout_s=0)  # never raises
    assert source.committed == len(records)

    # Each bad record set aside once, with a reason, as the kind expected; nothing else.
    bad = [(offset, item.kind) for offset, item in enumerate(stream) if item.kind is not None]
    assert [(offset, kind) for (offset, _), kind in zip(sink.sent, kinds, strict=True)] == bad
    assert all(reason for _, reason in sink.sent)

    # Every valid event stored once, with the exact bytes read.
    first: dict[str, Item] = {}
    for item in stream:
        if item.event is not None:
            first.setdefault(item.event.id, item)
    stored = dict(_rows(database_url, "SELECT id, body FROM events"))
    assert set(stored) == set(first)
    for event_id, item in first.items():
        assert stored[event_id].encode() == item.value

    # Exactly the deliveries the filters give (none for the disabled one), in stream order per
    # subscription and object.
    expected: dict[tuple[uuid.UUID, str], list[str]] = {}
    for item in first.values():
        assert item.event is not None
        for subscription, f in zip(subscriptions, FILTERS, strict=True):
            if matches(f, item.event):
                expected.setdefault((subscription, item.event.key), []).append(item.event.id)
    got: dict[tuple[uuid.UUID, str], list[str]] = {}
    for subscription, key, event_id in _rows(
        database_url,
        "SELECT subscription_id, object_key, event_id FROM deliveries ORDER BY seq",
    ):
        got.setdefault((subscription, key), []).append(event_id)
    assert got == expected

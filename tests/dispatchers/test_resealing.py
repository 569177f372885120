"""`secrets reseal` to a key a running dispatcher was started without: the resealed subscription's
deliveries wait (not claimed, not tried, not failing), every other subscription is delivered, and
nothing raises; a store with the key sends them. Real Postgres and receivers; fake time.

Before, the dispatcher died with a traceback: the consuming loop could not read the subscriptions
(it opened every secret to match events), and a sending worker could not open a claimed
delivery's secret."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from dispatchers.consuming import ConsumedRecord, ConsumingLoop
from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from dispatchers.sealing import Keyring, Unopened
from dispatchers.sending import SendingLoop
from dispatchers.unopened import UnopenedSubscriptions
from herald_contracts import encode_domain_event
from herald_dev.receiver import Receiver
from tests.dispatchers.test_consuming_loop import FakeSink, FakeSource
from tests.dispatchers.test_receivers import FakeTime, _loop
from tests.support import WEBHOOK_SECRET, domain_event

SECRET = WEBHOOK_SECRET
K1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
K2 = "k2:" + base64.b64encode(bytes(range(32, 64))).decode()


@pytest.fixture
def stores(database_url: str) -> Iterator[dict[str, Store]]:
    """The store of a dispatcher started with k1 only, that of a later one with k2 first, and
    that of an operator who moves secrets back to k1."""
    opened = {
        "k1": Store.open(database_url, keyring=Keyring.parse(K1)),
        "k2,k1": Store.open(database_url, keyring=Keyring.parse(f"{K2},{K1}")),
        "k1,k2": Store.open(database_url, keyring=Keyring.parse(f"{K1},{K2}")),
    }
    yield opened
    for store in opened.values():
        store.close()


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    pair = tuple(Receiver(secret=SECRET, tolerance_s=float("inf")) for _ in range(2))
    for r in pair:
        r.serve()
    yield pair[0], pair[1]
    for r in pair:
        r.stop()


def _subscribe(store: Store, url: str, *, header: bool = False) -> uuid.UUID:
    return store.subscriptions.create(
        url=url,
        secrets=[SECRET],
        filter=SubscriptionFilter(),
        ordered=True,
        headers=[("Authorization", "Bearer 0123456789abcdef")] if header else (),
    )


def _deliver(store: Store, subscriptions: list[uuid.UUID], time_: FakeTime, count: int) -> None:
    events = [domain_event(n) for n in range(count)]
    store.events.record_events(
        [(e, encode_domain_event(e), subscriptions) for e in events], now=time_.now()
    )


def _rows(database_url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchall()


def test_a_claim_takes_nothing_of_a_subscription_whose_secrets_do_not_open_and_names_it(
    stores: dict[str, Store], database_url: str
) -> None:
    old, new = stores["k1"], stores["k2,k1"]
    time_ = FakeTime()
    moved = _subscribe(old, "http://127.0.0.1:9/moved")
    kept = _subscribe(old, "http://127.0.0.1:9/kept", header=True)
    _deliver(old, [moved, kept], time_, count=3)
    assert new.subscriptions.reseal(only=moved) == 1

    claimed = old.queue.claim(now=time_.now(), limit=10, lease_s=60)
    assert [d.subscription_id for d in claimed.deliveries] == [kept]  # ordered: one per object
    assert claimed.deliveries[0].headers == (("Authorization", "Bearer 0123456789abcdef"),)
    assert list(claimed.unopened) == [moved]
    assert claimed.unopened[moved].key_id == "k2"
    assert not claimed.unopened[moved].key_held
    # Not claimed at all: no lease to run out, nothing to give back.
    assert (
        _rows(
            database_url,
            "SELECT status, attempt_count, claimed_until FROM deliveries WHERE subscription_id = %s",
            moved,
        )
        == [("pending", 0, None)] * 3
    )
    assert old.subscriptions.unopened(now=time_.now()) == claimed.unopened
    assert new.subscriptions.unopened(now=time_.now()) == {}
    assert [
        d.subscription_id for d in new.queue.claim_due(now=time_.now(), limit=10, lease_s=60)
    ] == [moved]


def test_subscriptions_are_read_without_opening_what_does_not_open(
    stores: dict[str, Store],
) -> None:
    old, new = stores["k1"], stores["k2,k1"]
    moved = _subscribe(old, "http://127.0.0.1:9/moved", header=True)
    kept = _subscribe(old, "http://127.0.0.1:9/kept")
    new.subscriptions.reseal(only=moved)
    by_id = {s.id: s for s in old.subscriptions.all(enabled_only=True)}
    assert by_id[kept].secrets == (SECRET,)
    assert by_id[kept].unopened is None
    unopened = by_id[moved].unopened
    assert isinstance(unopened, Unopened)
    assert unopened.key_id == "k2"
    assert (by_id[moved].secrets, by_id[moved].headers) == ((), ())  # nothing half-opened
    assert by_id[moved].url == "http://127.0.0.1:9/moved"
    assert old.subscriptions.get(moved) == by_id[moved]


def test_a_sending_loop_holds_a_resealed_subscription_without_trying_it_and_delivers_the_rest(
    stores: dict[str, Store],
    receivers: tuple[Receiver, Receiver],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old, new = stores["k1"], stores["k2,k1"]
    moved_receiver, kept_receiver = receivers
    time_ = FakeTime()
    moved = _subscribe(old, moved_receiver.url)
    kept = _subscribe(old, kept_receiver.url)
    unopened = UnopenedSubscriptions()
    loop = _loop(old, time_)
    loop.unopened = unopened
    loop.claim_batch = 50
    _deliver(old, [moved, kept], time_, count=2)
    while loop.run_once():
        pass
    assert (len(moved_receiver.received), len(kept_receiver.received)) == (2, 2)

    assert new.subscriptions.reseal(only=moved) == 1  # from another process, while this one runs
    for _ in range(3):
        _deliver(old, [moved, kept], time_, count=4)
        while loop.run_once():
            pass
        time_.advance(3 * 86400)  # days without an attempt: no failure streak
    assert len(kept_receiver.received) == 14
    assert len(moved_receiver.received) == 2
    assert unopened.held() == [moved]
    assert unopened.by_key() == {"k2": 1}
    told = [r.getMessage() for r in caplog.records if "wait" in r.getMessage()]
    assert len(told) == 1, told
    assert str(moved) in told[0]
    assert "'k2'" in told[0]
    assert _rows(
        database_url,
        "SELECT status, attempt_count, count(*) FROM deliveries WHERE subscription_id = %s"
        " GROUP BY 1, 2",
        moved,
    ) == [("delivered", 1, 2), ("pending", 0, 12)]
    assert _rows(
        database_url,
        "SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.subscription_id = %s",
        moved,
    ) == [(2,)]
    assert _rows(
        database_url, "SELECT enabled, failing_since FROM subscriptions WHERE id = %s", moved
    ) == [(True, None)]

    restarted = _loop(new, time_)  # a dispatcher started with the new key
    restarted.claim_batch = 50
    while restarted.run_once():
        pass
    ids = [r.headers["webhook-id"] for r in moved_receiver.received]
    assert len(ids) == len(set(ids)) == 14
    assert all(r.verified for r in moved_receiver.received)
    assert len(kept_receiver.received) == 14


def test_the_consuming_loop_queues_deliveries_for_a_subscription_whose_secrets_do_not_open(
    stores: dict[str, Store], database_url: str
) -> None:
    old, new = stores["k1"], stores["k2,k1"]
    moved = _subscribe(old, "http://127.0.0.1:9/moved")
    kept = _subscribe(old, "http://127.0.0.1:9/kept")
    new.subscriptions.reseal(only=moved)
    events = [domain_event(n) for n in range(3)]
    source = FakeSource(
        [
            ConsumedRecord("d", 0, n, e.key.encode(), encode_domain_event(e))
            for n, e in enumerate(events)
        ]
    )
    loop = ConsumingLoop(
        source=source, dead_letters=FakeSink(), store=old.intake, now=FakeTime().now
    )
    assert loop.run_once(timeout_s=0) == 6
    assert source.committed == 3
    assert _rows(
        database_url, "SELECT subscription_id, count(*) FROM deliveries GROUP BY 1 ORDER BY 1"
    ) == sorted([(moved, 3), (kept, 3)])


def test_time_passing_while_held_does_not_disable_it(
    stores: dict[str, Store], receivers: tuple[Receiver, Receiver], database_url: str
) -> None:
    """The disable-after-days rule counts failed attempts; a held subscription makes none."""
    old, new = stores["k1"], stores["k2,k1"]
    time_ = FakeTime()
    moved = _subscribe(old, receivers[0].url)
    new.subscriptions.reseal(only=moved)
    loop = _loop(old, time_)
    _deliver(old, [moved], time_, count=1)
    assert loop.run_once() == 0
    time_.advance(6 * 86400)
    assert loop.run_once() == 0
    assert _loop(new, time_).run_once() == 1
    assert _rows(database_url, "SELECT enabled, failing_since FROM subscriptions") == [(True, None)]
    assert loop.disable_after == timedelta(days=5)


def test_logged_once_means_once_per_subscription(
    stores: dict[str, Store], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    old, new = stores["k1"], stores["k2,k1"]
    time_ = FakeTime()
    subscriptions = [_subscribe(old, f"http://127.0.0.1:9/{n}") for n in range(2)]
    for s in subscriptions:
        new.subscriptions.reseal(only=s)
    shared = UnopenedSubscriptions()
    loops: list[SendingLoop] = [_loop(old, time_) for _ in range(3)]
    for loop in loops:
        loop.unopened = shared
        loop.claim_batch = 1
    _deliver(old, subscriptions, time_, count=3)
    for _ in range(4):
        for loop in loops:
            assert loop.run_once() == 0
    told = [r.getMessage() for r in caplog.records if "wait" in r.getMessage()]
    assert sorted(s for s in subscriptions if any(str(s) in m for m in told)) == sorted(
        subscriptions
    )
    assert len(told) == 2, told


def test_a_subscription_resealed_back_to_a_key_held_is_released_by_the_next_scan(
    stores: dict[str, Store], receivers: tuple[Receiver, Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    old, new = stores["k1"], stores["k2,k1"]
    time_ = FakeTime()
    moved = _subscribe(old, receivers[0].url)
    new.subscriptions.reseal(only=moved)
    unopened = UnopenedSubscriptions()
    loop = _loop(old, time_)
    loop.unopened = unopened
    _deliver(old, [moved], time_, count=2)
    assert loop.run_once() == 0
    since = unopened.seen
    assert (
        unopened.rescanned(old.subscriptions.unopened(now=time_.now()), since=since).waiting == {}
    )
    assert unopened.held() == [moved]  # still sealed with k2

    assert stores["k1,k2"].subscriptions.reseal(only=moved) == 1  # an operator moves it back to k1
    since = unopened.seen
    changes = unopened.rescanned(old.subscriptions.unopened(now=time_.now()), since=since)
    assert changes.reopened == [moved]
    assert unopened.held() == []
    assert loop.run_once() == 1
    time_.advance(1)
    assert loop.run_once() == 1  # ordered: one after the other
    assert len(receivers[0].received) == 2
    assert all(r.verified for r in receivers[0].received)

"""The dispatcher's command line against a real database: every command, JSON output, bad input."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from dispatchers.addresses import STRICT, AddressPolicy
from dispatchers.cli import parser, run_admin
from dispatchers.model import AttemptRecord, DueDelivery, Stores
from dispatchers.outcomes import Outcome, Verdict
from dispatchers.postgres import Store
from dispatchers.sealing import Keyring
from herald_contracts import DomainEvent, encode_domain_event
from tests.dispatchers.stores import memory_unless_postgres_asked
from tests.support import WEBHOOK_SECRET, domain_event

SECRET = WEBHOOK_SECRET
NEW_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
NOW = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)


class Run:
    def __init__(self, store: Stores, policy: AddressPolicy = STRICT) -> None:
        self.store = store
        self.policy = policy

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        out: list[str] = []
        err: list[str] = []
        args = parser().parse_args(list(argv))
        code = run_admin(
            args,
            self.store,
            out.append,
            err=err.append,
            now=lambda: NOW,
            secret_grace=timedelta(hours=24),
            address_policy=self.policy,
        )
        return code, "\n".join(out), "\n".join(err)


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Stores:
    return memory_unless_postgres_asked(request)


@pytest.fixture
def cli(store: Stores) -> Run:
    return Run(store)


def _count(database_url: str, table: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608 (test constant)
        return int(row[0]) if row else 0


def _create(cli: Run, *extra: str) -> str:
    code, out, err = cli(
        "subscriptions",
        "create",
        "--url",
        "https://hooks.example.com/h",
        "--secret",
        SECRET,
        *extra,
    )
    assert code == 0, err
    return out


def test_create_prints_the_id_and_show_prints_it_with_the_secret_redacted(cli: Run) -> None:
    ident = _create(cli, "--event-type", "rollout.*", "--cluster", "prod-*", "--unordered")
    assert uuid.UUID(ident)
    code, out, _ = cli("subscriptions", "show", ident, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == ident
    assert shown["event_types"] == ["rollout.*"]
    assert shown["clusters"] == ["prod-*"]
    assert shown["ordered"] is False
    assert shown["secrets"] == [f"whsec_...{SECRET[-4:]}"]
    assert SECRET not in out
    code, out, _ = cli("subscriptions", "show", ident)
    assert code == 0
    assert f"id: {ident}" in out
    assert SECRET not in out


def test_a_subscription_filters_on_any_producers_type_its_source_and_subject(cli: Run) -> None:
    ident = _create(
        cli,
        "--event-type",
        "com.example.app.*",
        "--event-type",
        "rollout.*",
        "--event-type",
        "dev.herald.flagger.*",  # a user's rule pack: the dispatcher does not load packs
        "--source",
        "https://ci.example.com/*",
        "--subject",
        "payments",
    )
    shown = json.loads(cli("subscriptions", "show", ident, "--json")[1])
    assert shown["event_types"] == ["com.example.app.*", "rollout.*", "dev.herald.flagger.*"]
    assert (shown["sources"], shown["subjects"]) == (["https://ci.example.com/*"], ["payments"])
    code, out, err = cli("subscriptions", "update", ident, "--subject", "orders", "--json")
    assert code == 0, err
    updated = json.loads(out)
    assert (updated["sources"], updated["subjects"]) == (["https://ci.example.com/*"], ["orders"])


def test_every_list_and_show_prints_only_json_with_json(cli: Run, store: Stores) -> None:
    ident = _create(cli)
    event = domain_event()
    store.events.record_events([(event, encode_domain_event(event), [uuid.UUID(ident)])], now=NOW)
    [delivery] = store.log.deliveries()
    for argv in (
        ("subscriptions", "list", "--json"),
        ("subscriptions", "show", ident, "--json"),
        ("subscriptions", "update", ident, "--unordered", "--json"),
        ("deliveries", "list", "--json"),
        ("deliveries", "list", "--subscription", ident, "--status", "pending", "--json"),
        ("deliveries", "show", delivery["id"], "--json"),
    ):
        code, out, err = cli(*argv)
        assert code == 0, (argv, err)
        json.loads(out)  # the whole output is one JSON document


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--url", "ftp://x.example/h", "--secret", SECRET), "--url: only http and https"),
        (("--url", "https://u:p@x.example/h", "--secret", SECRET), "credentials"),
        (("--url", "https://x.example/h", "--secret", "not-a-secret"), "--secret"),
        (("--url", "https://x.example/h", "--secret", SECRET, "--secret", "whsec_!!"), "--secret"),
        (
            ("--url", "https://x.example/h", "--secret", SECRET, "--event-type", "rollout.done"),
            "matches no event type",
        ),
        (("--url", "https://x.example/h", "--secret", SECRET, "--source", ""), "--source"),
        (("--url", "https://x.example/h", "--secret", SECRET, "--subject", ""), "--subject"),
        (
            (
                *("--url", "https://x.example/h", "--secret", SECRET),
                *("--event-type", "dev.herald.rollout.done*"),
            ),
            "matches no event type",
        ),
    ],
)
def test_invalid_input_is_refused_with_a_message_and_nothing_is_written(
    cli: Run, database_url: str, argv: tuple[str, ...], message: str
) -> None:
    code, out, err = cli("subscriptions", "create", *argv)
    assert code == 2
    assert message in err
    assert out == ""
    assert _count(database_url, "subscriptions") == 0


def test_malformed_ids_and_times_are_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (
        ["subscriptions", "show", "nope"],
        ["deliveries", "recover", "--subscription", str(uuid.uuid4()), "--since", "yesterday"],
        ["deliveries", "list", "--status", "lost"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args(argv)
        assert exit_info.value.code == 2
    assert "not an id" in capsys.readouterr().err


def test_unknown_ids_exit_1_with_a_message(cli: Run) -> None:
    missing = str(uuid.uuid4())
    for argv in (
        ("subscriptions", "show", missing),
        ("subscriptions", "disable", missing),
        ("subscriptions", "enable", missing),
        ("subscriptions", "rotate-secret", missing, "--secret", NEW_SECRET),
        ("subscriptions", "update", missing, "--unordered"),
        ("deliveries", "show", missing),
        ("deliveries", "redeliver", missing),
        ("deliveries", "recover", "--subscription", missing, "--since", "2026-08-01T00:00:00Z"),
        ("deliveries", "replay", "--subscription", missing, "--since", "2026-08-01T00:00:00Z"),
    ):
        code, _, err = cli(*argv)
        assert code == 1, argv
        what = (
            "delivery"
            if argv[:2] in (("deliveries", "show"), ("deliveries", "redeliver"))
            else "subscription"
        )
        assert f"error: no {what} {missing}" in err


def test_update_changes_only_what_is_given_and_a_new_url_starts_a_fresh_failure_streak(
    cli: Run, store: Stores, database_url: str
) -> None:
    ident = _create(cli, "--event-type", "rollout.*", "--cluster", "prod-*")
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE subscriptions SET failing_since = %s", (NOW - timedelta(days=2),))
    code, out, err = cli(
        "subscriptions", "update", ident, "--event-type", "application.*", "--unordered", "--json"
    )
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["event_types"], shown["clusters"], shown["ordered"]) == (
        ["application.*"],
        ["prod-*"],  # not given: kept
        False,
    )
    assert shown["url"] == "https://hooks.example.com/h"
    assert shown["secrets"] == [f"whsec_...{SECRET[-4:]}"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT failing_since FROM subscriptions").fetchone() == (
            NOW - timedelta(days=2),
        )
    code, out, err = cli(
        "subscriptions", "update", ident, "--url", "https://new.example.com/h", "--ordered"
    )
    assert code == 0, err
    assert "url: https://new.example.com/h" in out
    found = store.subscriptions.get(uuid.UUID(ident))
    assert found is not None
    assert (found.url, found.ordered) == ("https://new.example.com/h", True)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT failing_since FROM subscriptions").fetchone() == (None,)


def test_unsent_deliveries_go_to_the_updated_url(cli: Run, store: Stores) -> None:
    ident = _create(cli)
    event = domain_event()
    store.events.record_events([(event, encode_domain_event(event), [uuid.UUID(ident)])], now=NOW)
    assert cli("subscriptions", "update", ident, "--url", "https://new.example.com/h")[0] == 0
    [due] = store.queue.claim_due(now=NOW, limit=1, lease_s=60)
    assert due.url == "https://new.example.com/h"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "nothing to update"),
        (("--url", "ftp://x.example/h"), "--url: only http and https"),
        (("--event-type", "rollout.done"), "matches no event type"),
    ],
)
def test_invalid_updates_are_refused_and_change_nothing(
    cli: Run, store: Stores, argv: tuple[str, ...], message: str
) -> None:
    ident = _create(cli)
    before = store.subscriptions.get(uuid.UUID(ident))
    code, out, err = cli("subscriptions", "update", ident, *argv)
    assert (code, out) == (2, "")
    assert message in err
    assert store.subscriptions.get(uuid.UUID(ident)) == before


def test_replay_queues_the_stored_events_of_the_range_a_subscription_was_not_sent(
    cli: Run, store: Stores
) -> None:
    """Events read before the subscription existed (kept in the event store) are queued for it,
    in the order they were read, filtered like live ones, once only."""

    def at(event: DomainEvent, days_ago: float) -> DomainEvent:
        stamp = (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
        return replace(event, time=stamp)

    early = at(domain_event(1), 2)
    later = at(domain_event(2), 1)
    other_type = at(domain_event(3, catalogue="application.health_changed"), 1)
    too_old = at(domain_event(4), 10)
    store.events.record_events(
        [(e, encode_domain_event(e), []) for e in (too_old, early, other_type, later)], now=NOW
    )
    ident = _create(cli, "--event-type", "rollout.*")
    argv = ("deliveries", "replay", "--subscription", ident, "--since", "2026-08-13T00:00:00Z")
    code, out, err = cli(*argv, "--until", NOW.isoformat())
    assert code == 0, err
    assert out == f"2 events queued for {ident}"
    assert cli(*argv)[1] == f"0 events queued for {ident}"  # nothing twice
    as_read = reversed(store.log.deliveries(subscription_id=uuid.UUID(ident)))
    assert [d["event_id"] for d in as_read] == [early.id, later.id]
    [due] = store.queue.claim_due(now=NOW, limit=10, lease_s=60)  # ordered: the later one waits
    assert due.event_id == early.id
    code, _, err = cli(*argv, "--until", "2026-08-01T00:00:00Z")
    assert code == 2
    assert "--until must be after --since" in err


K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(32, 64))).decode()


def _stored_secrets(database_url: str) -> list[str]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT secrets || retired_secrets FROM subscriptions").fetchone()
    assert row is not None
    return list(row[0])


def test_with_a_keyring_secrets_are_sealed_at_rest_and_open_for_signing(
    database_url: str,
) -> None:
    sealed = Store.open(database_url, keyring=Keyring.parse(f"k1:{K1}"))
    try:
        cli = Run(sealed)
        ident = _create(cli, "--header", "Authorization: Bearer 0123456789abcdef")
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT headers FROM subscriptions").fetchone()
        assert row is not None
        assert row[0]["Authorization"].startswith("sealed:v1:k1:")
        assert "0123456789abcdef" not in json.dumps(row[0])
        assert cli("subscriptions", "rotate-secret", ident, "--secret", NEW_SECRET)[0] == 0
        stored = _stored_secrets(database_url)
        assert len(stored) == 2
        assert all(s.startswith("sealed:v1:k1:") for s in stored)
        assert not any(SECRET[6:] in s or NEW_SECRET[6:] in s for s in stored)
        shown = json.loads(cli("subscriptions", "show", ident, "--json")[1])
        assert shown["secrets"] == [f"whsec_...{NEW_SECRET[-4:]}"]
        event = domain_event()
        sealed.events.record_events(
            [(event, encode_domain_event(event), [uuid.UUID(ident)])], now=NOW
        )
        [due] = sealed.queue.claim_due(now=NOW, limit=1, lease_s=60)
        assert due.secrets == (NEW_SECRET, SECRET)  # what signs: opened
        assert due.headers == (("Authorization", "Bearer 0123456789abcdef"),)
        assert shown["headers"] == {"Authorization": "...cdef"}
    finally:
        sealed.close()


def test_reseal_seals_what_was_stored_as_given_and_moves_secrets_to_the_first_key(
    store: Stores, database_url: str
) -> None:
    ident = _create(Run(store), "--header", "X-Team: payments")
    assert _stored_secrets(database_url) == [SECRET]
    for keys, expected in ((f"k1:{K1}", "k1"), (f"k2:{K2},k1:{K1}", "k2")):
        keyed = Store.open(database_url, keyring=Keyring.parse(keys))
        try:
            code, out, err = Run(keyed)("secrets", "reseal")
            assert code == 0, err
            assert out == f"1 subscriptions resealed with key {expected!r}"
            assert (
                Run(keyed)("secrets", "reseal")[1]
                == f"0 subscriptions resealed with key {expected!r}"
            )
            [stored] = _stored_secrets(database_url)
            assert stored.startswith(f"sealed:v1:{expected}:")
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT headers->>'X-Team' FROM subscriptions").fetchone()
            assert row is not None
            assert row[0].startswith(f"sealed:v1:{expected}:")
        finally:
            keyed.close()
    only_k2 = Store.open(database_url, keyring=Keyring.parse(f"k2:{K2}"))
    try:
        found = only_k2.subscriptions.get(uuid.UUID(ident))
        assert found is not None
        assert found.secrets == (SECRET,)
        assert found.headers == (("X-Team", "payments"),)
    finally:
        only_k2.close()
    code, _, err = Run(store)("secrets", "reseal")
    assert code == 2
    assert "HERALD_SECRETS_KEYS is not set" in err


def test_commands_that_show_no_secret_work_without_its_key_and_those_that_open_one_name_it(
    database_url: str,
) -> None:
    """`secrets reseal` to k2 while a dispatcher or operator has k1 only: every command that
    shows no secret works; one that must open a secret exits 2 naming the missing key."""
    stores = {
        keys: Store.open(database_url, keyring=Keyring.parse(keys) if keys else None)
        for keys in ("", f"k1:{K1}", f"k2:{K2},k1:{K1}")
    }
    try:
        without, k1, k2 = (Run(s) for s in stores.values())
        moved = _create(k1, "--header", "Authorization: Bearer 0123456789abcdef")
        kept = _create(k1)
        event = domain_event()
        stores[f"k1:{K1}"].events.record_events(
            [(event, encode_domain_event(event), [uuid.UUID(moved)])], now=NOW
        )
        code, out, err = k2("secrets", "reseal", "--subscription", moved)
        assert (code, out) == (0, "1 subscriptions resealed with key 'k2'"), err
        before = _stored_secrets_of(database_url, moved)

        for cli in (k1, without):
            code, out, err = cli("subscriptions", "list")
            assert code == 0, err
            assert moved in out
            assert kept in out
            code, out, err = cli("subscriptions", "show", moved, "--json")
            assert code == 0, err
            shown = json.loads(out)
            assert (shown["secrets"], shown["headers"]) == ([], {})
            assert "sealed with key 'k2'" in shown["secrets_unopened"]
            assert "HERALD_SECRETS_KEYS" in shown["secrets_unopened"]
            code, out, err = cli("subscriptions", "show", moved)
            assert code == 0, err
            assert "secrets_unopened: a secret of subscription" in out
            [delivery] = json.loads(cli("deliveries", "list", "--subscription", moved, "--json")[1])
            assert cli("deliveries", "show", delivery["id"])[0] == 0
            assert cli("deliveries", "redeliver", delivery["id"])[0] == 0
            argv = ("--subscription", moved, "--since", "2026-08-01T00:00:00Z")
            assert cli("deliveries", "replay", *argv)[0] == 0
            assert cli("deliveries", "recover", *argv)[0] == 0
            assert cli("subscriptions", "disable", moved)[0] == 0
            assert cli("subscriptions", "enable", moved)[0] == 0
            code, out, err = cli("subscriptions", "update", moved, "--rate-limit", "5")
            assert code == 0, err
            assert "rate_limit_per_s: 5.0" in out
        assert _stored_secrets_of(database_url, moved) == before  # nothing opened, resealed

        code, out, err = k1("secrets", "reseal")
        assert (code, out) == (2, "")
        assert "HERALD_SECRETS_KEYS" in err
        assert f"subscription {moved} is sealed with key 'k2'" in err
        assert _stored_secrets_of(database_url, moved) == before
        assert k1("secrets", "reseal", "--subscription", kept)[1] == (
            "0 subscriptions resealed with key 'k1'"
        )
        code, _, err = k2("secrets", "reseal", "--subscription", str(uuid.uuid4()))
        assert code == 1
        assert "no subscription" in err
    finally:
        for store in stores.values():
            store.close()


def _stored_secrets_of(database_url: str, ident: str) -> tuple[Any, ...] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT secrets, headers FROM subscriptions WHERE id = %s", (ident,)
        ).fetchone()


def test_headers_are_set_replaced_and_cleared_and_bad_ones_refused(
    cli: Run, store: Stores, database_url: str
) -> None:
    ident = _create(cli, "--header", "X-Api-Key: 0123456789abcdef0000")
    code, out, err = cli("subscriptions", "update", ident, "--header", "X-Team: payments", "--json")
    assert code == 0, err
    assert json.loads(out)["headers"] == {"X-Team": "..."}
    found = store.subscriptions.get(uuid.UUID(ident))
    assert found is not None
    assert found.headers == (("X-Team", "payments"),)
    assert (
        json.loads(cli("subscriptions", "update", ident, "--no-headers", "--json")[1])["headers"]
        == {}
    )
    code, out, err = cli(
        "subscriptions",
        "create",
        "--url",
        "https://x.example/h",
        "--secret",
        SECRET,
        "--header",
        "webhook-id: forged",
    )
    assert (code, out) == (2, "")
    assert "--header: 'webhook-id' is set by the delivery itself" in err
    assert _count(database_url, "subscriptions") == 1


def test_a_rate_limit_is_set_at_creation_changed_and_lifted(cli: Run, store: Stores) -> None:
    ident = _create(cli, "--rate-limit", "0.5")
    assert json.loads(cli("subscriptions", "show", ident, "--json")[1])["rate_limit_per_s"] == 0.5
    code, out, err = cli("subscriptions", "update", ident, "--rate-limit", "20", "--json")
    assert code == 0, err
    assert json.loads(out)["rate_limit_per_s"] == 20
    code, out, err = cli("subscriptions", "update", ident, "--no-rate-limit", "--json")
    assert code == 0, err
    assert json.loads(out)["rate_limit_per_s"] is None
    found = store.subscriptions.get(uuid.UUID(ident))
    assert found is not None
    assert found.rate_limit_per_s is None


@pytest.mark.parametrize("rate", ["0", "-1", "fast", "inf", "nan"])
def test_a_rate_limit_that_is_not_a_positive_number_is_refused(
    rate: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["subscriptions", "create", "--url", "https://x.example/h", "--secret", SECRET],
        ["subscriptions", "update", str(uuid.uuid4())],
    ):
        with pytest.raises(SystemExit) as exit_info:
            parser().parse_args([*argv, "--rate-limit", rate])
        assert exit_info.value.code == 2
        assert "not a rate" in capsys.readouterr().err


def test_deliveries_list_finds_one_events_or_one_objects_deliveries(
    cli: Run, store: Stores
) -> None:
    first, second = uuid.UUID(_create(cli)), uuid.UUID(_create(cli))
    payments = [domain_event(n, name="payments") for n in range(2)]
    orders = domain_event(0, name="orders")
    store.events.record_events(
        [(e, encode_domain_event(e), [first, second]) for e in [*payments, orders]], now=NOW
    )
    code, out, err = cli("deliveries", "list", "--object", "c/billing/Rollout/payments", "--json")
    assert code == 0, err
    assert sorted(d["event_id"] for d in json.loads(out)) == sorted(
        e.id for e in payments for _ in (first, second)
    )
    code, out, err = cli("deliveries", "list", "--event", orders.id, "--json")
    assert code == 0, err
    assert sorted(d["subscription_id"] for d in json.loads(out)) == sorted(
        [str(first), str(second)]
    )
    code, out, _ = cli("deliveries", "list", "--event", orders.id, "--subscription", str(first))
    assert code == 0
    assert len(out.splitlines()) == 2  # the header and the one delivery
    code, out, err = cli("deliveries", "list", "--object", "payments")
    assert (code, out) == (2, "")
    assert "CLUSTER/NAMESPACE/KIND/NAME" in err


def test_disable_records_the_reason_and_enable_clears_it(cli: Run, store: Stores) -> None:
    ident = _create(cli)
    assert cli("subscriptions", "disable", ident, "--reason", "receiver moving")[0] == 0
    found = store.subscriptions.get(uuid.UUID(ident))
    assert found is not None
    assert (found.enabled, found.disabled_reason) == (False, "receiver moving")
    assert cli("subscriptions", "enable", ident)[0] == 0
    found = store.subscriptions.get(uuid.UUID(ident))
    assert found is not None
    assert (found.enabled, found.disabled_reason) == (True, None)


def test_rotate_secret_keeps_the_old_secret_signing_for_the_grace_period(
    cli: Run, store: Stores
) -> None:
    ident = uuid.UUID(_create(cli))
    code, out, _ = cli("subscriptions", "rotate-secret", str(ident), "--secret", NEW_SECRET)
    assert code == 0
    assert NEW_SECRET not in out
    event = domain_event()
    store.events.record_events([(event, encode_domain_event(event), [ident])], now=NOW)
    [due] = store.queue.claim_due(now=NOW + timedelta(hours=23), limit=1, lease_s=1)
    assert due.secrets == (NEW_SECRET, SECRET)
    store.queue.release([due])
    [due] = store.queue.claim_due(now=NOW + timedelta(hours=25), limit=1, lease_s=1)
    assert due.secrets == (NEW_SECRET,)


def test_show_lists_every_attempt_and_redeliver_starts_a_new_round(cli: Run, store: Stores) -> None:
    ident = uuid.UUID(_create(cli))
    event = domain_event()
    store.events.record_events([(event, encode_domain_event(event), [ident])], now=NOW)
    [due] = store.queue.claim_due(now=NOW, limit=1, lease_s=60)
    _attempt(store, due, status=500, verdict=Verdict.FAILED)
    code, out, _ = cli("deliveries", "show", str(due.id), "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["status"] == "failed"
    assert [a["status_code"] for a in shown["attempts"]] == [500]
    assert shown["event"]["id"] == event.id
    assert cli("deliveries", "redeliver", str(due.id))[0] == 0
    [again] = store.queue.claim_due(now=NOW, limit=1, lease_s=60)
    assert (again.attempt_number, again.round_attempt) == (2, 1)
    assert "attempts (1):" in cli("deliveries", "show", str(due.id))[1]


def test_recover_requeues_the_failed_deliveries_in_the_range_only(
    cli: Run, store: Stores, database_url: str
) -> None:
    ident = uuid.UUID(_create(cli, "--unordered"))
    events = [domain_event() for _ in range(3)]
    store.events.record_events([(e, encode_domain_event(e), [ident]) for e in events], now=NOW)
    for due in store.queue.claim_due(now=NOW, limit=10, lease_s=60):
        _attempt(store, due, status=500, verdict=Verdict.FAILED)
    with psycopg.connect(database_url) as conn:  # spread the creation times over three days
        for i, e in enumerate(events):
            conn.execute(
                "UPDATE deliveries SET created_at = %s WHERE event_id = %s",
                (NOW - timedelta(days=3 - i), e.id),
            )
    code, out, _ = cli(
        "deliveries",
        "recover",
        "--subscription",
        str(ident),
        "--since",
        (NOW - timedelta(days=2, hours=1)).isoformat(),
        "--until",
        (NOW - timedelta(hours=12)).isoformat(),
    )
    assert (code, out) == (0, "2 failed deliveries requeued")
    statuses = {row["event_id"]: row["status"] for row in store.log.deliveries()}
    assert statuses == {events[0].id: "failed", events[1].id: "pending", events[2].id: "pending"}
    assert (
        cli(
            "deliveries",
            "recover",
            "--subscription",
            str(ident),
            "--since",
            NOW.isoformat(),
            "--until",
            (NOW - timedelta(days=1)).isoformat(),
        )[0]
        == 2
    )  # --until before --since


def test_commands_on_a_database_never_migrated_say_so(cli: Run, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TABLE attempts, deliveries, events, subscriptions, schema_migrations")
    code, _, err = cli("subscriptions", "list")
    assert code == 1
    assert "python -m dispatchers migrate" in err
    code, out, _ = cli("migrate")
    assert code == 0
    assert out.startswith("applied: 0001_initial")


def _attempt(store: Stores, due: DueDelivery, *, status: int, verdict: Verdict) -> Any:
    return store.queue.record_attempt(
        AttemptRecord(
            delivery_id=due.id,
            claim=due.claim,
            started_at=NOW,
            duration_ms=3,
            status_code=status,
            response_headers={},
            response_body="",
            error=None,
        ),
        Outcome(verdict),
        now=NOW,
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        pytest.param("http://169.254.169.254/latest/meta-data/", "cloud metadata", id="metadata"),
        pytest.param("http://[fd00:ec2::254]/", "cloud metadata", id="metadata-ipv6"),
        pytest.param("http://metadata.google.internal/", "cloud metadata", id="metadata-name"),
        pytest.param("http://0.0.0.0:9103/", "unspecified", id="unspecified"),
        pytest.param("http://127.0.0.1:9103/h", "loopback", id="loopback-unlisted"),
        pytest.param("http://localhost:9103/h", "loopback", id="localhost-unlisted"),
        pytest.param(
            "http://10.9.0.1/h", "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS", id="private"
        ),
    ],
)
def test_create_and_update_refuse_a_url_the_policy_never_delivers_to_naming_why(
    store: Stores, database_url: str, url: str, reason: str
) -> None:
    cli = Run(store, AddressPolicy.parse("10.42.0.0/16, *.svc.cluster.local"))
    code, out, err = cli("subscriptions", "create", "--url", url, "--secret", SECRET)
    assert (code, out) == (2, "")
    assert "--url" in err
    assert reason in err
    assert _count(database_url, "subscriptions") == 0
    ident = _create(cli)
    before = store.subscriptions.get(uuid.UUID(ident))
    code, out, err = cli("subscriptions", "update", ident, "--url", url)
    assert (code, out) == (2, "")
    assert reason in err
    assert store.subscriptions.get(uuid.UUID(ident)) == before


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://10.42.3.4:8080/h", id="in-a-listed-cidr"),
        pytest.param("http://hooks.team.svc.cluster.local/h", id="a-name-judged-when-resolved"),
    ],
)
def test_create_accepts_a_private_receiver_the_policy_allows(store: Stores, url: str) -> None:
    cli = Run(store, AddressPolicy.parse("10.42.0.0/16, *.svc.cluster.local"))
    code, out, err = cli("subscriptions", "create", "--url", url, "--secret", SECRET)
    assert code == 0, err
    found = store.subscriptions.get(uuid.UUID(out))
    assert found is not None
    assert found.url == url


def test_the_command_line_reads_the_dispatchers_policy_from_the_settings(
    infra_env: dict[str, str], database_url: str
) -> None:
    def create(url: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "dispatchers", "subscriptions", "create"),
                *("--url", url, "--secret", SECRET),
            ],
            env={**infra_env, "HERALD_DATABASE_URL": database_url, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = create("http://10.42.0.7/h")
    assert refused.returncode == 2
    assert "HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS" in refused.stderr
    listed = create("http://10.42.0.7/h", HERALD_DISPATCHER_ALLOWED_PRIVATE_NETWORKS="10.42.0.0/16")
    assert listed.returncode == 0, listed.stderr
    assert _count(database_url, "subscriptions") == 1

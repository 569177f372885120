"""The dispatcher as a real process: its metrics, scraped after a few deliveries."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable

import psycopg
import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from dispatchers.sealing import Keyring
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from tests.conftest import Topics
from tests.support import WEBHOOK_SECRET, domain_event, http_get, produce_domain_events, wait_until

SECRET = WEBHOOK_SECRET


def test_metrics_count_deliveries_attempts_and_open_work(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    services: Callable[..., ServiceProcess],
) -> None:
    receiver = Receiver(secret=SECRET)
    receiver.serve()
    try:
        store.subscriptions.create(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
        )
        events = [domain_event(n, catalogue="rollout.completed") for n in range(3)]
        produce_domain_events(kafka, topics.domain, events)
        port = infra.free_port()
        services(
            "dispatchers",
            {
                **topics.env(),
                "HERALD_DATABASE_URL": database_url,
                "HERALD_DISPATCHER_GROUP_ID": f"metrics-{uuid.uuid4().hex[:8]}",
                "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
                "HERALD_METRICS_PORT": str(port),
            },
        )

        def scrape() -> str:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return str(r.read().decode())
            except OSError:
                return ""

        text = wait_until(
            lambda: (
                (t := scrape())
                and 'herald_dispatcher_deliveries_total{outcome="delivered"} 3.0' in t
                and 'herald_dispatcher_open_deliveries{status="pending"} 0.0' in t
                and t
            ),
            timeout_s=60,
        )
        assert 'herald_dispatcher_attempts_total{status_class="2xx"} 3.0' in text
        assert "herald_dispatcher_end_to_end_seconds_count 3.0" in text
        assert "herald_dispatcher_attempt_seconds_count 3.0" in text
        assert 'herald_dispatcher_breakers{state="closed"} 1.0' in text
        assert "herald_dispatcher_disabled_subscriptions 0.0" in text
        # Every 5 s: the partitions it was assigned and fetched, nothing left to read.
        lags = wait_until(
            lambda: [
                line
                for line in scrape().splitlines()
                if line.startswith("herald_dispatcher_consumer_lag{")
            ],
            timeout_s=30,
        )
        assert all(line.endswith(" 0.0") for line in lags), lags
    finally:
        receiver.stop()


def test_secrets_sealed_at_rest_sign_and_a_dispatcher_without_the_key_does_not_start(
    kafka: str,
    topics: Topics,
    database_url: str,
    services: Callable[..., ServiceProcess],
) -> None:
    keys = "k1:" + base64.b64encode(bytes(range(32))).decode()
    sealed = Store.open(database_url, keyring=Keyring.parse(keys))
    receiver = Receiver(secret=SECRET)
    receiver.serve()
    try:
        sealed.subscriptions.create(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
        )
        events = [domain_event(n) for n in range(3)]
        produce_domain_events(kafka, topics.domain, events)
        env = {
            **topics.env(),
            "HERALD_DATABASE_URL": database_url,
            "HERALD_DISPATCHER_GROUP_ID": f"sealed-{uuid.uuid4().hex[:8]}",
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
        }
        without_key = services("dispatchers", env)
        assert wait_until(lambda: not without_key.alive, timeout_s=30)
        assert without_key.stop() not in (0, None)
        log = without_key.log_tail(20)
        assert "bad setting: HERALD_SECRETS_KEYS" in log
        assert "sealed with key 'k1'" in log
        assert "Traceback" not in log
        services("dispatchers", {**env, "HERALD_SECRETS_KEYS": keys})
        assert wait_until(lambda: len(receiver.received) >= 3, timeout_s=60)
        assert all(r.verified for r in receiver.received), [r.reason for r in receiver.received]
        assert {r.headers["webhook-id"] for r in receiver.received} == {e.id for e in events}
    finally:
        receiver.stop()
        sealed.close()


K1 = "k1:" + base64.b64encode(bytes(range(32))).decode()
K2 = "k2:" + base64.b64encode(bytes(range(32, 64))).decode()


def _admin(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """A command run as an operator would, in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "dispatchers", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _deliveries(database_url: str, subscription: uuid.UUID) -> list[tuple[str, str, int, int]]:
    """(event id, status, attempt count, attempt rows) of a subscription's deliveries."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT d.event_id, d.status, d.attempt_count, count(a.delivery_id)"
            " FROM deliveries d LEFT JOIN attempts a ON a.delivery_id = d.id"
            " WHERE d.subscription_id = %s GROUP BY d.id",
            (subscription,),
        ).fetchall()


def _delivered(database_url: str, subscription: uuid.UUID) -> int:
    """How many of a subscription's deliveries are logged as delivered, with their attempt."""
    return sum(row[1:] == ("delivered", 1, 1) for row in _deliveries(database_url, subscription))


@pytest.mark.timeout(240)
def test_a_reseal_to_a_key_a_running_dispatcher_lacks_holds_that_subscription_and_no_other(
    kafka: str,
    topics: Topics,
    database_url: str,
    infra_env: dict[str, str],
    services: Callable[..., ServiceProcess],
) -> None:
    """A dispatcher started with k1 only; `secrets reseal` moves one of two subscriptions to k2
    from another process. The dispatcher used to die with a traceback (it could not open that
    secret to match events or to sign). It runs on: the other subscription keeps receiving, the
    resealed one's deliveries wait (pending, no attempt), and a dispatcher restarted with k2,k1
    sends them, each once."""
    sealed = Store.open(database_url, keyring=Keyring.parse(K1))
    moved_receiver, kept_receiver = Receiver(secret=SECRET), Receiver(secret=SECRET)
    for r in (moved_receiver, kept_receiver):
        r.serve()
    try:
        moved, kept = (
            sealed.subscriptions.create(
                url=r.url,
                secrets=[SECRET],
                filter=SubscriptionFilter(),
                ordered=True,
                headers=[("Authorization", "Bearer 0123456789abcdef")],
            )
            for r in (moved_receiver, kept_receiver)
        )
        port = infra.free_port()
        env = {
            **topics.env(),
            "HERALD_DATABASE_URL": database_url,
            "HERALD_DISPATCHER_GROUP_ID": f"reseal-{uuid.uuid4().hex[:8]}",
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
            "HERALD_METRICS_PORT": str(port),
        }
        dispatcher = services("dispatchers", {**env, "HERALD_SECRETS_KEYS": K1})
        before = [domain_event(n, name=f"svc-{n % 3}") for n in range(6)]
        produce_domain_events(kafka, topics.domain, before)
        # Attempts are recorded after their batch: a webhook received may not be logged yet.
        for sub in (moved, kept):
            assert wait_until(lambda sub=sub: _delivered(database_url, sub) == 6, timeout_s=60)

        operator = {**infra_env, **env, "HERALD_METRICS_PORT": "0"}
        resealed = _admin(
            {**operator, "HERALD_SECRETS_KEYS": f"{K2},{K1}"},
            "secrets",
            "reseal",
            "--subscription",
            str(moved),
        )
        assert (resealed.returncode, resealed.stdout) == (
            0,
            "1 subscriptions resealed with key 'k2'\n",
        ), resealed.stderr
        # An operator with k1 only: what shows no secret works, what must open one names the key.
        listed = _admin({**operator, "HERALD_SECRETS_KEYS": K1}, "subscriptions", "list")
        assert listed.returncode == 0, listed.stderr
        assert str(moved) in listed.stdout
        refused = _admin({**operator, "HERALD_SECRETS_KEYS": K1}, "secrets", "reseal")
        assert refused.returncode == 2
        assert "sealed with key 'k2', which HERALD_SECRETS_KEYS does not hold" in refused.stderr
        assert "Traceback" not in refused.stderr

        after = [domain_event(n, name=f"svc-{n % 3}") for n in range(6, 18)]
        for n in range(0, len(after), 4):  # events keep coming
            produce_domain_events(kafka, topics.domain, after[n : n + 4])
        assert wait_until(lambda: len(kept_receiver.received) >= 18, timeout_s=60)
        assert wait_until(lambda: len(_deliveries(database_url, moved)) == 18, timeout_s=30)
        metric = 'herald_dispatcher_unopened_subscriptions{key="k2"} 1.0'
        assert wait_until(lambda: metric in http_get(port, "/metrics")[1], timeout_s=30)
        assert dispatcher.alive, dispatcher.log_tail()
        assert http_get(port, "/healthz")[0] == 200
        status, body = http_get(port, "/readyz")
        assert status == 200, body
        assert "sealed with key 'k2'" in json.loads(body)["secrets"]
        waiting = {
            row[0]: row[1:] for row in _deliveries(database_url, moved) if row[1] != "delivered"
        }
        assert waiting == {e.id: ("pending", 0, 0) for e in after}
        assert len(moved_receiver.received) == 6
        log = dispatcher.log_tail(400)
        assert sum(str(moved) in line and "wait" in line for line in log.splitlines()) == 1
        assert "Traceback" not in log
        assert dispatcher.stop() == 0

        services("dispatchers", {**env, "HERALD_SECRETS_KEYS": f"{K2},{K1}"})
        assert wait_until(lambda: _delivered(database_url, moved) == 18, timeout_s=60)
        assert wait_until(lambda: _delivered(database_url, kept) == 18, timeout_s=30)
        assert all(row[1:] == ("delivered", 1, 1) for row in _deliveries(database_url, kept))
        every = {e.id for e in before + after}
        for r in (moved_receiver, kept_receiver):
            received = Counter(x.headers["webhook-id"] for x in r.received)
            assert set(received) == every
            assert max(received.values()) == 1, received
            assert all(x.verified for x in r.received), [x.reason for x in r.received]
            assert all(x.headers["authorization"] == "Bearer 0123456789abcdef" for x in r.received)
    finally:
        for r in (moved_receiver, kept_receiver):
            r.stop()
        sealed.close()

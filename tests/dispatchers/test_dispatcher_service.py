"""The dispatcher as a real process: its metrics, scraped after a few deliveries."""

from __future__ import annotations

import base64
import urllib.request
import uuid
from collections.abc import Callable

from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from dispatchers.sealing import Keyring
from herald_contracts import encode_domain_event
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from tests.conftest import Topics
from tests.support import WEBHOOK_SECRET, domain_event, produce, wait_until

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
        store.create_subscription(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=True
        )
        events = [domain_event(n, catalogue="rollout.completed") for n in range(3)]
        produce(kafka, topics.domain, [(e.key.encode(), encode_domain_event(e)) for e in events])
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
        sealed.create_subscription(
            url=receiver.url, secrets=[SECRET], filter=SubscriptionFilter(), ordered=False
        )
        events = [domain_event(n) for n in range(3)]
        produce(kafka, topics.domain, [(e.key.encode(), encode_domain_event(e)) for e in events])
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

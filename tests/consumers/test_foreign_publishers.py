"""Other producers' CloudEvents reach the subscribers whose filters name them: published with the
Java CloudEvents SDK's serializer (structured mode to the domain topic, its default binary mode to
a further topic the dispatcher reads) and with a plain confluent-kafka producer, as
docs/contracts.md ("Publishing your own CloudEvents") says; each delivered once, signed, with the
event id as `webhook-id`. What is no CloudEvent is dead-lettered with the reason."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from herald_contracts import DOMAIN_CONTENT_TYPE
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from tests.conftest import Topics
from tests.consumers.sdks import publish_with_java_sdk
from tests.support import WEBHOOK_SECRET, consume, produce

TYPE = "com.example.app.deployed"
SOURCE = "https://ci.example.com/pipelines/7"


def _event(n: int) -> dict[str, str]:
    return {"id": f"deploy-{n}", "source": SOURCE, "type": TYPE, "subject": "payments"}


def test_foreign_cloudevents_from_the_java_sdk_and_confluent_kafka_are_delivered(
    kafka: str,
    topics: Topics,
    store: Store,
    database_url: str,
    services: Callable[..., ServiceProcess],
    java_consumer: Path,
) -> None:
    extra = f"{topics.domain}.platform"
    admin = AdminClient({"bootstrap.servers": kafka})
    for future in admin.create_topics([NewTopic(extra, num_partitions=3)]).values():
        future.result(timeout=30)
    receiver = Receiver(secret=WEBHOOK_SECRET)
    receiver.serve()
    try:
        wanted = store.subscriptions.create(
            url=receiver.url,
            secrets=[WEBHOOK_SECRET],
            filter=SubscriptionFilter(event_types=("com.example.app.*",), sources=(SOURCE,)),
            ordered=True,
        )
        # Herald's own filters do not take them: a catalogue glob, a cluster.
        for herald_filter in (
            SubscriptionFilter(event_types=("rollout.*",)),
            SubscriptionFilter(clusters=("prod-*",)),
        ):
            store.subscriptions.create(
                url=receiver.url, secrets=[WEBHOOK_SECRET], filter=herald_filter, ordered=True
            )
        publish_with_java_sdk(
            java_consumer,
            kafka,
            topics.domain,
            mode="structured",
            key="app-7",
            event=_event(1),
            data={"version": "1.0.1"},
        )
        publish_with_java_sdk(
            java_consumer,
            kafka,
            extra,
            mode="binary",
            key="app-7",
            event=_event(2),
            data={"version": "1.0.2"},
        )
        plain = {"specversion": "1.0", **_event(3), "data": {"version": "1.0.3"}}
        produce(
            kafka,
            topics.domain,
            [(b"app-7", json.dumps(plain).encode()), (b"app-7", b"not a CloudEvent")],
            headers=[("content-type", DOMAIN_CONTENT_TYPE.encode())],
        )
        services(
            "dispatchers",
            {
                **topics.env(),
                "HERALD_DATABASE_URL": database_url,
                "HERALD_DISPATCHER_GROUP_ID": f"foreign-{uuid.uuid4().hex[:8]}",
                "HERALD_DISPATCHER_EXTRA_TOPICS": extra,
                "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
            },
        )
        received = receiver.wait_for(3, timeout_s=60)
        assert len(received) == 3, received
        assert all(r.verified for r in received), [r.reason for r in received]
        by_id = {r.headers["webhook-id"]: r.event for r in received}
        assert sorted(by_id) == ["deploy-1", "deploy-2", "deploy-3"]
        # One key, one partition of the domain topic, an ordered subscription: in produced order.
        arrived = [r.headers["webhook-id"] for r in sorted(received, key=lambda r: r.at)]
        assert arrived.index("deploy-1") < arrived.index("deploy-3")
        for n in (1, 2, 3):
            event = by_id[f"deploy-{n}"]
            assert (event["id"], event["type"], event["source"], event["subject"]) == (
                f"deploy-{n}",
                TYPE,
                SOURCE,
                "payments",
            )
            assert event["data"] == {"version": f"1.0.{n}"}
        assert by_id["deploy-2"]["datacontenttype"] == "application/json"  # from binary mode
        [dead] = consume(kafka, topics.dead_letters, count=1, timeout_s=30)
        assert dead.value == b"not a CloudEvent"
        assert b"not JSON" in dead.headers["herald.error"]
        assert {d["subscription_id"] for d in store.log.deliveries()} == {str(wanted)}
    finally:
        receiver.stop()

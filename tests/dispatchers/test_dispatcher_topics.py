"""The dispatcher started before its topics exist: unready, its /readyz and log naming the missing
topics and the command that creates them; ready by itself once they exist, and delivering."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from herald_runtime.topics.plan import ENSURE_COMMAND
from tests.conftest import ensure_topics, topics_not_created
from tests.support import (
    WEBHOOK_SECRET,
    domain_event,
    http_get,
    produce_domain_events,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_a_dispatcher_started_before_its_topics_waits_unready_naming_the_command(
    kafka: str, database_url: str, store: Store, services: Callable[..., ServiceProcess]
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = topics_not_created(suffix)
    port = infra.free_port()
    dispatcher = services(
        "dispatchers",
        {
            **topics.env(),
            "HERALD_DATABASE_URL": database_url,
            "HERALD_DISPATCHER_GROUP_ID": f"notyet-{suffix}",
            "HERALD_METRICS_PORT": str(port),
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",
        },
    )

    def unready_topics() -> str:
        status, body = http_get(port, "/readyz")
        return str(json.loads(body).get("topics", "")) if status == 503 else ""

    reason = wait_until(lambda: ENSURE_COMMAND in unready_topics() and unready_topics())
    assert topics.domain in reason
    assert topics.dead_letters in reason
    # The database is up, but not asked yet: /readyz must not say it cannot be reached.
    assert json.loads(http_get(port, "/readyz")[1])["database"].startswith("not asked yet")
    assert http_get(port, "/healthz")[0] == 200
    wait_until(lambda: ENSURE_COMMAND in dispatcher.log_tail(50))

    ensure_topics(kafka, topics)
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=60)
    assert json.loads(http_get(port, "/readyz")[1])["topics"] == "ok"

    receiver = Receiver(secret=WEBHOOK_SECRET)
    receiver.serve()
    try:
        store.subscriptions.create(
            url=receiver.url, secrets=[WEBHOOK_SECRET], filter=SubscriptionFilter(), ordered=True
        )
        event = domain_event(1, catalogue="rollout.completed")
        produce_domain_events(kafka, topics.domain, [event])
        wait_until(lambda: len(receiver.received) >= 1, timeout_s=60)  # consuming the new topic
        assert receiver.received[0].headers["webhook-id"] == event.id
    finally:
        receiver.stop()
    assert dispatcher.stop() == 0

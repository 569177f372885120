"""The collector started before its raw topic exists: unready, its /readyz naming the topic and the
command that creates it; publishing by itself once it exists."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess
from herald_runtime.topics.plan import ENSURE_COMMAND
from tests.conftest import ensure_topics, topics_not_created
from tests.support import consume, http_get, rollout_event, wait_until

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_a_collector_started_before_its_raw_topic_waits_unready_naming_the_command(
    kafka: str,
    fake_kube: FakeKube,
    kubeconfig: Path,
    services: Callable[..., ServiceProcess],
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = topics_not_created(suffix)
    fake_kube.apply("ADDED", rollout_event("RolloutCompleted", "Rollout completed update"))
    port = infra.free_port()
    collector = services(
        "collectors",
        {
            **topics.env(),
            "HERALD_CLUSTER_NAME": "prod-eu",
            "HERALD_KUBECONFIG": str(kubeconfig),
            "HERALD_METRICS_PORT": str(port),
        },
    )

    def waiting_for() -> str:
        status, body = http_get(port, "/readyz")
        return str(json.loads(body).get("waiting_for", "")) if status == 503 else ""

    reason = wait_until(lambda: ENSURE_COMMAND in waiting_for() and waiting_for())
    assert topics.raw in reason

    ensure_topics(kafka, topics)
    assert len(consume(kafka, topics.raw, count=1, timeout_s=60)) == 1
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=60)
    assert collector.stop() == 0

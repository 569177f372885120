"""`python -m processors` as a real Faust worker on the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from herald_contracts import (
    DOMAIN_CONTENT_TYPE,
    DeadLetterHeader,
    RawRecord,
    WatchType,
    encode_raw_record,
)
from herald_dev import infra
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import consume, http_get, produce, rollout_event, validate, wait_until


def _raw(event: dict[str, object]) -> tuple[bytes, bytes]:
    record = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:16:54Z",
        object=event,
    )
    return record.key.encode(), encode_raw_record(record)


def test_raw_events_become_domain_events_and_garbage_becomes_dead_letters(
    kafka: str, topics: Topics, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    completed = rollout_event(
        "RolloutCompleted",
        "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 2 canary steps",
        uid="5b8e9a8e-6d0c-4f51-a1c5-2c3a3c0e9f11",
    )
    noise = rollout_event(
        "Pulled",
        "Container image already present on machine",
        component="kubelet",
        involved={"kind": "Pod", "namespace": "billing", "name": "payments-1", "apiVersion": "v1"},
    )
    produce(
        kafka,
        topics.raw,
        [_raw(noise), (b"prod-eu/billing/Rollout/payments", b"{broken"), _raw(completed)],
    )
    port = infra.free_port()
    services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"test-processors-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_METRICS_PORT": str(port),
        },
    )
    [domain] = consume(kafka, topics.domain, count=1, timeout_s=60)
    event = json.loads(domain.value or b"")
    validate("deploy-event.v1.schema.json", event)
    assert event["type"] == "dev.herald.rollout.completed"
    assert event["data"]["revision"] == 2
    assert domain.key == b"prod-eu/billing/Rollout/payments"
    assert domain.headers == {"content-type": DOMAIN_CONTENT_TYPE.encode()}  # structured mode
    [dead] = consume(kafka, topics.dead_letters, count=1, timeout_s=30)
    assert dead.value == b"{broken"
    assert dead.headers[DeadLetterHeader.STAGE] == b"processors"
    assert dead.headers[DeadLetterHeader.SOURCE_TOPIC] == topics.raw.encode()
    assert b"not JSON" in dead.headers[DeadLetterHeader.ERROR]
    assert (
        len(consume(kafka, topics.domain, count=2, timeout_s=3)) == 1
    )  # the Pod event made nothing
    # Processing: alive and ready (tables recovered, no rebalance), and the metrics count it all.
    assert http_get(port, "/healthz")[0] == 200
    _, body = wait_until(lambda: (r := http_get(port, "/readyz"))[0] == 200 and r)
    assert json.loads(body) == {"ok": True, "stuck": {}, "recovered": True, "rebalancing": False}
    metrics = http_get(port, "/metrics")[1]
    assert 'herald_processor_records_total{outcome="dead_lettered"} 1.0' in metrics
    assert (
        'herald_processor_domain_events_total{type="dev.herald.rollout.completed"} 1.0' in metrics
    )

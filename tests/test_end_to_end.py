"""The thin slice, end to end, on real parts: a simulated cluster plays a canary rollout; the three
services run as real processes on the real broker and database; a receiver that shares no code with
the dispatcher's signing verifies every webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from herald_dev.fakekube import FakeKube, load_scenario
from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from tests.conftest import Topics
from tests.support import wait_until

SCENARIO = Path(__file__).resolve().parents[1] / "deploy/local/scenarios/canary.jsonl"
SECRET = "whsec_" + base64.b64encode(b"end-to-end-test-secret-0123456789").decode()
EXPECTED = [
    ("rollout.update_started", "Rollout updated to revision 2"),
    ("rollout.step_advanced", "Rollout step 1/3 completed (setWeight: 20)"),
    ("rollout.paused", "Rollout is paused (CanaryPauseStep)"),
    ("rollout.step_advanced", "Rollout step 2/3 completed (pause: 5s)"),
    ("rollout.resumed", "Rollout is resumed"),
    ("rollout.step_advanced", "Rollout step 3/3 completed (setWeight: 100)"),
    (
        "rollout.completed",
        "Rollout completed update to revision 2 (6f8b9c7d5): Completed all 3 canary steps",
    ),
]


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    every, completed = Receiver(secret=SECRET), Receiver(secret=SECRET)
    every.serve()
    completed.serve()
    yield every, completed
    every.stop()
    completed.stop()


def subscribe(env: dict[str, str], url: str, *filters: str) -> str:
    """`python -m dispatchers subscriptions create` for `url` with SECRET and `filters`: its id."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dispatchers",
            "subscriptions",
            "create",
            "--url",
            url,
            "--secret",
            SECRET,
            *filters,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return str(uuid.UUID(result.stdout.strip()))


def _independent_signature(headers: dict[str, str], body: bytes) -> str:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_a_canary_rollout_reaches_subscribers_signed_in_order_and_logged(
    infra_env: dict[str, str],
    topics: Topics,
    database_url: str,
    fake_kube: FakeKube,
    kubeconfig: Path,
    services: Callable[..., ServiceProcess],
    receivers: tuple[Receiver, Receiver],
    tmp_path: Path,
) -> None:
    every, completed_only = receivers
    run = uuid.uuid4().hex[:8]
    env = {
        **infra_env,
        **topics.env(),
        "HERALD_ALLOW_PRIVATE_NETWORKS": "true",  # the receivers listen on 127.0.0.1
        "HERALD_DATABASE_URL": database_url,
        "HERALD_CLUSTER_NAME": "prod-eu",
        "HERALD_KUBECONFIG": str(kubeconfig),
        "HERALD_PROCESSOR_APP_ID": f"e2e-processors-{run}",
        "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "processor-data"),
        "HERALD_DISPATCHER_GROUP_ID": f"e2e-dispatchers-{run}",
        "HERALD_METRICS_PORT": "0",
    }
    every_id = subscribe(env, every.url, "--event-type", "rollout.*")
    completed_id = subscribe(
        env, completed_only.url, "--event-type", "rollout.completed", "--namespace", "billing"
    )
    for module in ("collectors", "processors", "dispatchers"):
        services(module, env)
    fake_kube.play(load_scenario(SCENARIO))

    received = every.wait_for(len(EXPECTED), timeout_s=90)
    assert [(r.event["type"], r.event["data"]["source_message"]) for r in received] == [
        (f"dev.herald.{t}", m) for t, m in EXPECTED
    ]
    [completed] = completed_only.wait_for(1, timeout_s=30)
    for request in [*received, completed]:
        assert request.verified, request.reason
        assert request.headers["webhook-signature"] == _independent_signature(
            request.headers, request.body
        )
        assert request.headers["webhook-id"] == request.event["id"]
        assert request.headers["content-type"] == "application/cloudevents+json"

    body = completed.event
    assert body["specversion"] == "1.0"
    assert body["type"] == "dev.herald.rollout.completed"
    assert body["source"] == "/clusters/prod-eu/namespaces/billing/rollouts/payments"
    assert body["subject"] == "payments"
    assert body["datacontenttype"] == "application/json"
    assert body["data"]["revision"] == 2
    assert body["data"]["pod_hash"] == "6f8b9c7d5"
    assert body["data"]["detail"] == "Completed all 3 canary steps"
    stored = next(e for e in fake_kube.events() if e["reason"] == "RolloutCompleted")
    assert body["time"] == stored["lastTimestamp"]
    assert body == received[-1].event  # one event, the same body to both subscribers

    def logged() -> list[tuple[Any, ...]] | None:
        # The dispatcher records a batch's attempts after sending it: the receiver can have a
        # webhook before its attempt row exists.
        with psycopg.connect(database_url) as conn:
            rows = conn.execute(
                "SELECT d.subscription_id::text, d.status, d.attempt_count, a.status_code, a.error,"
                " e.body FROM deliveries d JOIN attempts a ON a.delivery_id = d.id"
                " JOIN events e ON e.id = d.event_id WHERE d.event_id = %s"
                " ORDER BY d.subscription_id",
                (body["id"],),
            ).fetchall()
        return rows if len(rows) == 2 and all(r[1] != "pending" for r in rows) else None

    rows = wait_until(logged, timeout_s=30)
    with psycopg.connect(database_url) as conn:
        counts = dict(
            conn.execute(
                "SELECT subscription_id::text, count(*) FROM deliveries GROUP BY 1"
            ).fetchall()
        )
    assert sorted(r[0] for r in rows) == sorted([every_id, completed_id])
    for _, status, attempts, code, error, stored_body in rows:
        assert (status, attempts, code, error) == ("delivered", 1, 204, None)
        assert json.loads(stored_body) == body
    assert completed.body == rows[0][5].encode()  # what was sent is exactly what is stored
    assert counts == {every_id: len(EXPECTED), completed_id: 1}

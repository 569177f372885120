"""The processor and its topics: it waits for them unready, naming the command that creates them,
and goes on by itself once they exist; the topics plan knows the changelog topics its tables use."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from herald_dev import infra
from herald_dev.processes import ServiceProcess
from herald_runtime.topics.plan import ENSURE_COMMAND, Role, TopicSettings, processor_topics
from processors.app import build_app
from processors.settings import ProcessorSettings
from tests.conftest import ensure_topics, topics_not_created
from tests.support import http_get, wait_until


def test_the_topics_plan_names_the_changelogs_of_the_processors_tables() -> None:
    settings = ProcessorSettings.from_env(
        {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:9", "HERALD_PROCESSOR_APP_ID": "p2"}
    )
    app = build_app(settings, raw_partitions=6, restart=lambda: None)
    built = sorted(table.changelog_topic.get_topic_name() for table in app.tables.values())
    planned = processor_topics(TopicSettings.from_env({"HERALD_PROCESSOR_APP_ID": "p2"}))
    assert built == sorted(s.name for s in planned if s.role is Role.CHANGELOG)


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_processor_started_before_its_topics_waits_unready_naming_the_command_then_runs(
    kafka: str, services: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    topics = topics_not_created(suffix)
    port = infra.free_port()
    processor = services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"notyet-{suffix}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_METRICS_PORT": str(port),
        },
    )

    def waiting_for() -> str:
        status, body = http_get(port, "/readyz")
        return str(json.loads(body).get("waiting_for", "")) if status == 503 else ""

    reason = wait_until(lambda: ENSURE_COMMAND in waiting_for() and waiting_for(), timeout_s=60)
    for name in (topics.raw, topics.domain, topics.dead_letters):
        assert name in reason
    assert http_get(port, "/healthz")[0] == 200  # waiting is not being stuck
    wait_until(lambda: ENSURE_COMMAND in processor.log_tail(100), timeout_s=30)

    ensure_topics(kafka, topics)
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=120)
    log = processor.log_tail(400)
    assert "bad setting" not in log
    assert "Traceback" not in log
    assert processor.stop() == 0

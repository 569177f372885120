"""The services' logs, as a log collector reads them: with HERALD_LOG_FORMAT=json every line is one
JSON object (Faust's, mode's, aiokafka's and librdkafka's lines included, no banner or spinner),
and a Kafka that is away does not flood them."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from herald_dev import infra
from herald_dev.processes import ServiceProcess
from tests.conftest import Topics
from tests.support import http_get, wait_until

pytestmark = pytest.mark.integration


def _entries(process: ServiceProcess) -> list[dict[str, Any]]:
    """Every line of the service's output, each of which must be a JSON object."""
    lines = process.log_path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.timeout(120)
def test_a_processor_writes_only_json_lines_faust_included(
    topics: Topics, tmp_path: Path, services: Callable[..., ServiceProcess]
) -> None:
    port = infra.free_port()
    processor = services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"logs-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_METRICS_PORT": str(port),
            "HERALD_LOG_FORMAT": "json",
        },
    )
    wait_until(lambda: http_get(port, "/readyz")[0] == 200, timeout_s=90)
    assert processor.stop() == 0
    entries = _entries(processor)
    loggers = {e["logger"].split(".")[0] for e in entries}
    assert {"processors", "faust"} <= loggers, loggers
    assert all({"time", "level", "logger", "message"} <= e.keys() for e in entries)


@pytest.mark.timeout(60)
def test_a_dispatcher_whose_kafka_is_away_logs_a_bounded_number_of_json_lines(
    database_url: str, services: Callable[..., ServiceProcess]
) -> None:
    """Before: about 290 raw librdkafka lines in a few seconds of a dispatcher without Kafka."""
    dispatcher = services(
        "dispatchers",
        {
            "HERALD_KAFKA_BOOTSTRAP": f"127.0.0.1:{infra.free_port()}",
            "HERALD_DATABASE_URL": database_url,
            "HERALD_DISPATCHER_WORKERS": "1",
            "HERALD_LOG_FORMAT": "json",
        },
    )
    # It waits for its topics first (asking with librdkafka's own lines silenced, saying once per
    # try what fails), then for the consumer: either way Kafka's absence is logged by now.
    wait_until(
        lambda: any(
            sign in dispatcher.log_tail() for sign in ("does not answer", "Connection refused")
        ),
        timeout_s=30,
    )
    observed_until = time.monotonic() + 6
    while time.monotonic() < observed_until:  # watched, not slept: it must stay bounded throughout
        assert len(dispatcher.log_path.read_text().splitlines()) <= 12, dispatcher.log_tail()
        time.sleep(0.5)
    assert dispatcher.alive
    dispatcher.stop()
    entries = _entries(dispatcher)
    assert len(entries) <= 16
    # librdkafka's lines, when there are any yet, come through the dispatcher's logger in the same
    # format; never its raw `%3|...` lines on stderr.
    librdkafka = [e for e in entries if e["message"].startswith("FAIL [rdkafka#")]
    assert all(e["logger"] == "dispatchers.kafka" for e in librdkafka)
    assert not any(line.startswith("%") for line in dispatcher.log_path.read_text().splitlines())

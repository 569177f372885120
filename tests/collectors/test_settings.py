"""How the collector's timeouts relate: a quiet watch (a real API server sends nothing on a watch of
Events until its server-side timeout ends it) must end cleanly and leave the collector ready."""

from __future__ import annotations

import pytest

from collectors.settings import CollectorSettings

BASE = {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "HERALD_CLUSTER_NAME": "prod-eu"}


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({}, id="defaults"),
        pytest.param({"HERALD_READ_TIMEOUT_S": "5"}, id="short-read-timeout"),
        pytest.param({"HERALD_WATCH_TIMEOUT_S": "3"}, id="short-watch-timeout"),
        pytest.param({"HERALD_WATCH_TIMEOUT_S": "1800"}, id="long-watch-timeout"),
    ],
)
def test_a_quiet_watch_ends_cleanly_before_its_read_timeout_and_leaves_the_collector_ready(
    env: dict[str, str],
) -> None:
    settings = CollectorSettings.from_env({**BASE, **env})
    assert settings.watch_read_timeout_s > settings.watch_timeout_s
    assert settings.contact_limit_s > settings.watch_read_timeout_s

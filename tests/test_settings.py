"""A bad setting stops each service at start with a message that names it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from dispatchers.settings import DispatcherSettings, SettingsError
from processors.settings import ProcessorSettings
from processors.settings import SettingsError as ProcessorSettingsError

BASE = {"PATH": os.environ.get("PATH", ""), "HERALD_METRICS_PORT": "0"}


@pytest.mark.parametrize(
    ("module", "env", "named"),
    [
        pytest.param(
            "collectors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
            "HERALD_CLUSTER_NAME",
            id="collector-no-cluster",
        ),
        pytest.param(
            "collectors",
            {"HERALD_CLUSTER_NAME": "a/b", "HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
            "HERALD_CLUSTER_NAME",
            id="collector-cluster-with-slash",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_KUBECONFIG": "/nonexistent",
            },
            "HERALD_KUBECONFIG",
            id="collector-missing-kubeconfig",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_LIST_PAGE_SIZE": "many",
            },
            "HERALD_LIST_PAGE_SIZE",
            id="collector-page-size-not-a-number",
        ),
        pytest.param(
            "collectors",
            {"HERALD_CLUSTERS_FILE": "/nonexistent.yaml", "HERALD_KAFKA_BOOTSTRAP": "x:1"},
            "HERALD_CLUSTERS_FILE",
            id="collector-missing-cluster-file",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_REPLICA_COUNT": "3",
            },
            "HERALD_REPLICA_COUNT is no longer used: replicas share the clusters through Leases",
            id="collector-replica-count-replaced-by-leases",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_LEASE_NAMESPACE": "herald",
                "HERALD_LEASE_RENEW_DEADLINE_S": "20",
            },
            "HERALD_LEASE_RENEW_DEADLINE_S < HERALD_LEASE_DURATION_S",
            id="collector-lease-renew-deadline-past-the-lease-duration",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_LEASE_NAMESPACE": "herald",
            },
            "HERALD_LEASE_KUBECONFIG",
            id="collector-leases-outside-a-cluster-without-a-kubeconfig",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_LOG_FORMAT": "xml",
            },
            "HERALD_LOG_FORMAT",
            id="collector-log-format",
        ),
        pytest.param(
            "collectors",
            {"HERALD_CLUSTER_NAME": "a", "HERALD_KAFKA_BOOTSTRAP": "kafka"},
            "HERALD_KAFKA_BOOTSTRAP",
            id="collector-bootstrap-without-port",
        ),
        pytest.param(
            "collectors",
            {"HERALD_CLUSTER_NAME": "a", "HERALD_KAFKA_BOOTSTRAP": "k:9092,k2:90x"},
            "HERALD_KAFKA_BOOTSTRAP",
            id="collector-bootstrap-bad-port",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_RAW_TOPIC": "raw events",
            },
            "HERALD_RAW_TOPIC",
            id="collector-raw-topic-not-a-topic-name",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_EVENT_MESSAGE_MAX_BYTES": "990000",
            },
            "HERALD_EVENT_MESSAGE_MAX_BYTES",
            id="collector-message-limit-leaves-no-room-in-a-kafka-record",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_KAFKA_MESSAGE_MAX_BYTES": "1000",
            },
            "HERALD_KAFKA_MESSAGE_MAX_BYTES",
            id="collector-kafka-record-limit-too-small",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_OWNER_RESOLUTION": "yes",
            },
            "HERALD_OWNER_RESOLUTION",
            id="collector-owner-resolution-not-a-boolean",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_OWNER_LABELS": "team,not a label",
            },
            "HERALD_OWNER_LABELS",
            id="collector-owner-label-not-a-label-key",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_OWNER_CACHE_MAX_OBJECTS": "0",
            },
            "HERALD_OWNER_CACHE_MAX_OBJECTS",
            id="collector-owner-cache-bound-zero",
        ),
        pytest.param(
            "collectors",
            {
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_OWNER_SYNC_TIMEOUT_S": "soon",
            },
            "HERALD_OWNER_SYNC_TIMEOUT_S",
            id="collector-owner-sync-timeout-not-a-number",
        ),
        pytest.param("processors", {}, "HERALD_KAFKA_BOOTSTRAP", id="processor-no-kafka"),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_METRICS_PORT": "70000"},
            "HERALD_METRICS_PORT",
            id="processor-port-out-of-range",
        ),
        pytest.param("dispatchers", {}, "HERALD_DATABASE_URL", id="dispatcher-no-database"),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_RETRY_SCHEDULE_S": "0,5,soon"},
            "HERALD_RETRY_SCHEDULE_S",
            id="dispatcher-schedule-not-numbers",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x"},
            "HERALD_KAFKA_BOOTSTRAP",
            id="dispatcher-run-without-kafka",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_BREAKER_FAILURE_RATIO": "2"},
            "HERALD_BREAKER_FAILURE_RATIO",
            id="dispatcher-breaker-ratio-above-1",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_ALLOW_PRIVATE_NETWORKS": "maybe"},
            "HERALD_ALLOW_PRIVATE_NETWORKS",
            id="dispatcher-private-networks-not-a-boolean",
        ),
        pytest.param(
            "dispatchers",
            {
                "HERALD_DATABASE_URL": "postgresql://x",
                "HERALD_RETRY_AFTER_MIN_S": "60",
                "HERALD_RETRY_AFTER_MAX_S": "10",
            },
            "HERALD_RETRY_AFTER_MIN_S",
            id="dispatcher-retry-after-bounds-reversed",
        ),
        pytest.param(
            "dispatchers",
            {
                "HERALD_DATABASE_URL": "postgresql://x",
                "HERALD_DISPATCHER_LEASE_S": "20",
                "HERALD_HTTP_TOTAL_TIMEOUT_S": "15",
            },
            "HERALD_DISPATCHER_LEASE_S",
            id="dispatcher-lease-shorter-than-two-attempts",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_SECRETS_KEYS": "k1:c2hvcnQ="},
            "HERALD_SECRETS_KEYS",
            id="dispatcher-secrets-key-too-short",
        ),
        pytest.param(
            "dispatchers",
            {
                "HERALD_DATABASE_URL": "postgres://her ald@db/herald",
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
            },
            "HERALD_DATABASE_URL",
            id="dispatcher-database-url-not-a-url",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://db:fivefour/h", "HERALD_KAFKA_BOOTSTRAP": "x:1"},
            "HERALD_DATABASE_URL",
            id="dispatcher-database-port-not-a-number",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_BACKOFF_MAX_S": "soon"},
            "HERALD_BACKOFF_MAX_S",
            id="dispatcher-backoff-not-a-number",
        ),
        pytest.param(
            "dispatchers",
            {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_DISPATCHER_EXTRA_TOPICS": "a,b c"},
            "HERALD_DISPATCHER_EXTRA_TOPICS",
            id="dispatcher-extra-topic-not-a-topic-name",
        ),
        pytest.param(
            "dispatchers",
            {
                "HERALD_DATABASE_URL": "postgresql://x",
                "HERALD_DISPATCHER_EXTRA_TOPICS": "platform.events,herald.deploy-events.v1",
            },
            "HERALD_DISPATCHER_EXTRA_TOPICS",
            id="dispatcher-extra-topic-is-the-domain-topic",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_PROCESSOR_PRODUCER_LINGER_MS": "5000"},
            "HERALD_PROCESSOR_PRODUCER_LINGER_MS",
            id="processor-linger-too-long",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_PROCESSOR_FETCH_MAX_WAIT_MS": "1"},
            "HERALD_PROCESSOR_FETCH_MAX_WAIT_MS",
            id="processor-fetch-wait-below-5-ms-would-spin",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "kafka-0.kafka"},
            "HERALD_KAFKA_BOOTSTRAP",
            id="processor-bootstrap-without-port",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HERALD_RAW_TOPIC": "kube events"},
            "HERALD_RAW_TOPIC",
            id="processor-raw-topic-not-a-topic-name",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HERALD_PROCESSOR_STOP_TIMEOUT_S": "0"},
            "HERALD_PROCESSOR_STOP_TIMEOUT_S",
            id="processor-stop-timeout-zero",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HERALD_PROCESSOR_LOOP_STALL_S": "soon"},
            "HERALD_PROCESSOR_LOOP_STALL_S",
            id="processor-loop-stall-not-a-number",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HERALD_PROCESSOR_SWEEP_INTERVAL_S": "-5"},
            "HERALD_PROCESSOR_SWEEP_INTERVAL_S",
            id="processor-sweep-interval-negative",
        ),
        pytest.param(
            "processors",
            {
                "HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                "HERALD_PROCESSOR_RULE_PACKS": "argo-workflows",
            },
            "HERALD_PROCESSOR_RULE_PACKS",
            id="processor-rule-pack-not-built-in",
        ),
        pytest.param(
            "processors",
            {
                "HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                "HERALD_PROCESSOR_RULE_PACKS": "argo-cd,argo-cd",
            },
            "HERALD_PROCESSOR_RULE_PACKS",
            id="processor-rule-pack-twice",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HERALD_PROCESSOR_RULE_PACKS": ","},
            "HERALD_PROCESSOR_RULE_PACKS",
            id="processor-rule-packs-naming-none-but-not-none",
        ),
        pytest.param(
            "processors",
            {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1", "HERALD_PROCESSOR_RULE_DIR": "/nonexistent"},
            "HERALD_PROCESSOR_RULE_DIR",
            id="processor-rule-dir-missing",
        ),
    ],
)
def test_bad_setting_stops_the_service_naming_it(
    module: str, env: dict[str, str], named: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module],
        env={**BASE, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("raw", "topics"),
    [
        pytest.param("", (), id="unset"),
        pytest.param("platform.events", ("platform.events",), id="one"),
        pytest.param(" a.v1 , b_v2 ", ("a.v1", "b_v2"), id="two-with-spaces"),
    ],
)
def test_dispatcher_extra_topics_are_read_in_order(raw: str, topics: tuple[str, ...]) -> None:
    env = {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_DISPATCHER_EXTRA_TOPICS": raw}
    assert DispatcherSettings.from_env(env).extra_topics == topics


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("a,,b", id="empty-name"),
        pytest.param("a,a", id="twice"),
        pytest.param("herald.dead-letters.v1", id="the-dead-letter-topic"),
        pytest.param("herald.kube-events.v1", id="the-raw-topic-of-kubernetes-events"),
        pytest.param("..", id="dots"),
    ],
)
def test_dispatcher_extra_topics_refused(raw: str) -> None:
    env = {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_DISPATCHER_EXTRA_TOPICS": raw}
    with pytest.raises(SettingsError, match="HERALD_DISPATCHER_EXTRA_TOPICS"):
        DispatcherSettings.from_env(env)


@pytest.mark.parametrize("bootstrap", ["kafka", "kafka:90x", "k:9092,k2"])
def test_a_dispatcher_refuses_a_kafka_address_without_a_port_as_the_other_services_do(
    bootstrap: str,
) -> None:
    env = {"HERALD_DATABASE_URL": "postgresql://x", "HERALD_KAFKA_BOOTSTRAP": bootstrap}
    with pytest.raises(SettingsError, match=r"HERALD_KAFKA_BOOTSTRAP.*host:port"):
        DispatcherSettings.from_env(env)
    with pytest.raises(ProcessorSettingsError, match=r"HERALD_KAFKA_BOOTSTRAP.*host:port"):
        ProcessorSettings.from_env({"HERALD_KAFKA_BOOTSTRAP": bootstrap})


def test_dispatcher_session_timeout_is_librdkafkas_unless_set_and_not_below_6_s() -> None:
    base = {"HERALD_DATABASE_URL": "postgresql://x"}
    assert DispatcherSettings.from_env(base).session_timeout_s == 45.0
    given = {**base, "HERALD_DISPATCHER_SESSION_TIMEOUT_S": "6"}
    assert DispatcherSettings.from_env(given).session_timeout_s == 6.0
    with pytest.raises(SettingsError, match="HERALD_DISPATCHER_SESSION_TIMEOUT_S"):
        DispatcherSettings.from_env({**base, "HERALD_DISPATCHER_SESSION_TIMEOUT_S": "5"})


def _start(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**BASE, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "env", "named"),
    [
        pytest.param(
            "collectors",
            {
                "HERALD_KAFKA_BOOTSTRAP": "kafka",
                "HERALD_CLUSTER_NAME": "a",
                "HERALD_LIST_PAGE_SIZE": "many",
                "HERALD_LOG_LEVEL": "loud",
                "HERALD_OWNER_RESOLUTION": "yes",
            },
            [
                "HERALD_KAFKA_BOOTSTRAP",
                "HERALD_LIST_PAGE_SIZE",
                "HERALD_LOG_LEVEL",
                "HERALD_OWNER_RESOLUTION",
            ],
            id="collector",
        ),
        pytest.param(
            "processors",
            {
                "HERALD_METRICS_PORT": "70000",
                "HERALD_RAW_TOPIC": "kube events",
                "HERALD_LOG_FORMAT": "xml",
            },
            [
                "HERALD_KAFKA_BOOTSTRAP",
                "HERALD_RAW_TOPIC",
                "HERALD_METRICS_PORT",
                "HERALD_LOG_FORMAT",
            ],
            id="processor",
        ),
        pytest.param(
            "dispatchers",
            {
                "HERALD_RETRY_SCHEDULE_S": "0,5,soon",
                "HERALD_BREAKER_FAILURE_RATIO": "2",
                "HERALD_LOG_LEVEL": "verbose",
            },
            [
                "HERALD_DATABASE_URL",
                "HERALD_RETRY_SCHEDULE_S",
                "HERALD_BREAKER_FAILURE_RATIO",
                "HERALD_LOG_LEVEL",
            ],
            id="dispatcher",
        ),
    ],
)
def test_every_bad_setting_is_named_at_once_one_line_each(
    module: str, env: dict[str, str], named: list[str]
) -> None:
    result = _start(module, env)
    assert result.returncode == 1
    header, *problems = result.stderr.splitlines()
    assert header.endswith(f"{len(named)} bad settings:")
    assert [p.split()[0].rstrip(":") for p in problems] == named
    assert "Traceback" not in result.stderr


SERVICES = [
    pytest.param(
        "collectors",
        {"HERALD_CLUSTER_NAME": "a", "HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
        id="collector",
    ),
    pytest.param("processors", {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, id="processor"),
    pytest.param(
        "dispatchers",
        {
            "HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "HERALD_DATABASE_URL": "postgresql://herald@127.0.0.1:1/herald",
        },
        id="dispatcher",
    ),
]


@pytest.fixture
def port_in_use() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(("module", "env"), SERVICES)
def test_a_metrics_port_in_use_stops_the_service_in_one_line_naming_the_setting(
    module: str, env: dict[str, str], port_in_use: int
) -> None:
    result = _start(module, {**env, "HERALD_METRICS_PORT": str(port_in_use)})
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert last.endswith(
        f"bad setting: HERALD_METRICS_PORT: cannot listen on 127.0.0.1:{port_in_use}: the port is"
        " in use (another process listens there; choose another port, or 0 to turn the endpoint"
        " off)"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("module", "env"), SERVICES)
def test_an_unknown_herald_name_is_warned_about_at_start_with_a_suggestion_in_the_log_format(
    module: str, env: dict[str, str], port_in_use: int
) -> None:
    """The service is stopped right after the warning by a port in use; names another Herald
    service reads (HERALD_DATABASE_URL on a collector) are not warned about."""
    result = _start(
        module,
        {
            "HERALD_DATABASE_URL": "postgresql://herald@127.0.0.1:1/herald",
            "HERALD_DISPATCHER_WORKERS": "2",
            **env,
            "HERALD_METRICS_PORT": str(port_in_use),
            "HERALD_LOG_LEVLE": "debug",
            "HERALD_LOG_FORMAT": "json",
        },
    )
    warnings = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if line.startswith("{") and "unknown settings" in line
    ]
    assert [(w["level"], w["message"], w["unknown_settings"]) for w in warnings] == [
        (
            "warning",
            "unknown settings, ignored: HERALD_LOG_LEVLE (did you mean HERALD_LOG_LEVEL?)",
            "HERALD_LOG_LEVLE",
        )
    ]

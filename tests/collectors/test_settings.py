"""How the collector's timeouts relate: a quiet watch (a real API server sends nothing on a watch of
Events until its server-side timeout ends it) must end cleanly and leave the collector ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.errors import SettingsError
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


def test_owner_resolution_is_on_by_default_with_the_recommended_labels() -> None:
    settings = CollectorSettings.from_env(BASE)
    assert settings.owner_resolution
    assert settings.owner_labels == {"app.kubernetes.io/name", "app.kubernetes.io/part-of"}
    assert settings.owner_cache_max_objects == 200_000
    assert settings.owner_instance_label == "app.kubernetes.io/instance"
    custom = {**BASE, "HERALD_OWNER_INSTANCE_LABEL": "argocd.argoproj.io/instance"}
    assert CollectorSettings.from_env(custom).owner_instance_label == "argocd.argoproj.io/instance"


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        pytest.param("", frozenset(), id="empty-selects-none"),
        pytest.param(" team , example.com/owner ", {"team", "example.com/owner"}, id="trimmed"),
        pytest.param("app.kubernetes.io/name", {"app.kubernetes.io/name"}, id="one"),
    ],
)
def test_the_selected_owner_labels_are_read_as_given(value: str, labels: set[str]) -> None:
    settings = CollectorSettings.from_env({**BASE, "HERALD_OWNER_LABELS": value})
    assert settings.owner_labels == labels


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param(
            {"HERALD_OWNER_RESOLUTION": "on"}, "HERALD_OWNER_RESOLUTION", id="not-boolean"
        ),
        pytest.param({"HERALD_OWNER_LABELS": "-team"}, "HERALD_OWNER_LABELS", id="bad-label-key"),
        pytest.param({"HERALD_OWNER_LABELS": "a/b/c"}, "HERALD_OWNER_LABELS", id="two-slashes"),
        pytest.param(
            {"HERALD_OWNER_INSTANCE_LABEL": "argocd instance"},
            "HERALD_OWNER_INSTANCE_LABEL",
            id="instance-label-not-a-label-key",
        ),
        pytest.param(
            {"HERALD_OWNER_CACHE_MAX_OBJECTS": "0"}, "HERALD_OWNER_CACHE_MAX_OBJECTS", id="no-room"
        ),
    ],
)
def test_bad_owner_settings_are_refused_naming_them(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        CollectorSettings.from_env({**BASE, **env})


def test_without_a_lease_namespace_one_collector_watches_every_cluster() -> None:
    settings = CollectorSettings.from_env(BASE)
    assert settings.lease_namespace is None
    assert (
        CollectorSettings.from_env({**BASE, "HERALD_LEASE_NAMESPACE": " "}).lease_namespace is None
    )


def test_lease_settings_default_to_client_gos_timings_and_the_host_name(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "home.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    env = {
        **BASE,
        "HERALD_LEASE_NAMESPACE": "herald",
        "HERALD_LEASE_KUBECONFIG": str(kubeconfig),
        "HOSTNAME": "herald-collector-7d9f-x2k4q",
    }
    settings = CollectorSettings.from_env(env)
    assert (settings.lease_namespace, settings.lease_holder) == (
        "herald",
        "herald-collector-7d9f-x2k4q",
    )
    assert settings.lease_kubeconfig == kubeconfig
    assert (
        settings.lease_duration_s,
        settings.lease_renew_deadline_s,
        settings.lease_retry_period_s,
    ) == (15, 10.0, 2.0)
    named = CollectorSettings.from_env({**env, "HERALD_LEASE_HOLDER": "pod-a"})
    assert named.lease_holder == "pod-a"
    assert settings.lease_group == "herald-collector"
    grouped = CollectorSettings.from_env({**env, "HERALD_LEASE_GROUP": "prod-herald-collector"})
    assert grouped.lease_group == "prod-herald-collector"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param({"HERALD_REPLICA_INDEX": "0"}, "HERALD_REPLICA_INDEX", id="replica-index"),
        pytest.param({"HERALD_REPLICA_COUNT": "2"}, "HERALD_REPLICA_COUNT", id="replica-count"),
        pytest.param(
            {"HERALD_LEASE_KUBECONFIG": "/etc/hosts"},
            "HERALD_LEASE_NAMESPACE",
            id="lease-kubeconfig-without-namespace",
        ),
        pytest.param(
            {"HERALD_LEASE_NAMESPACE": "Herald_NS"}, "HERALD_LEASE_NAMESPACE", id="bad-namespace"
        ),
        pytest.param(
            {"HERALD_LEASE_NAMESPACE": "herald", "HERALD_LEASE_GROUP": "Herald.Collector"},
            "HERALD_LEASE_GROUP",
            id="group-not-a-dns-label",
        ),
        pytest.param(
            {"HERALD_LEASE_NAMESPACE": "herald", "HERALD_LEASE_GROUP": "x" * 64},
            "HERALD_LEASE_GROUP",
            id="group-too-long",
        ),
        pytest.param(
            {"HERALD_LEASE_NAMESPACE": "herald", "HERALD_LEASE_HOLDER": "pod a"},
            "HERALD_LEASE_HOLDER",
            id="holder-with-a-space",
        ),
        pytest.param(
            {"HERALD_LEASE_NAMESPACE": "herald", "HERALD_LEASE_RETRY_PERIOD_S": "10"},
            "HERALD_LEASE_RETRY_PERIOD_S",
            id="retry-not-below-the-renew-deadline",
        ),
        pytest.param(
            {"HERALD_LEASE_NAMESPACE": "herald", "HERALD_LEASE_DURATION_S": "0"},
            "HERALD_LEASE_DURATION_S",
            id="zero-duration",
        ),
    ],
)
def test_bad_lease_settings_are_refused_naming_them(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        CollectorSettings.from_env({**BASE, **env})

"""The simulated API server speaks the real list/watch protocol to the official kubernetes client."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from herald_dev.fakekube import FakeKube, load_scenario
from tests.support import rollout_event


def _api(kubeconfig: Path) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _add(fake: FakeKube, n: int, *, namespace: str = "billing") -> list[dict[str, Any]]:
    added = []
    for i in range(n):
        event = rollout_event("RolloutStepCompleted", f"Rollout step {i + 1}/{n} completed (pause)")
        event["metadata"] = {"namespace": namespace, "name": f"payments.{i:04d}"}
        added.append(fake.apply("ADDED", event))
    return added


def _watch_lines(api: client.CoreV1Api, **kwargs: Any) -> list[dict[str, Any]]:
    response = api.list_event_for_all_namespaces(watch=True, _preload_content=False, **kwargs)
    return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def test_typed_list_works_with_the_official_client(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _add(fake_kube, 3)
    events = _api(kubeconfig).list_event_for_all_namespaces()
    assert [e.reason for e in events.items] == ["RolloutStepCompleted"] * 3
    assert events.metadata.resource_version == "3"


def test_paginated_list_is_a_consistent_snapshot(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _add(fake_kube, 5)
    api = _api(kubeconfig)
    first = api.list_event_for_all_namespaces(limit=2)
    assert len(first.items) == 2
    assert first.metadata.remaining_item_count == 3
    _add(fake_kube, 2, namespace="zzz")  # created after the snapshot: not in its later pages
    names = [e.metadata.name for e in first.items]
    token = first.metadata._continue
    while token:
        page = api.list_event_for_all_namespaces(limit=2, _continue=token)
        names += [e.metadata.name for e in page.items]
        assert page.metadata.resource_version == "5"
        token = page.metadata._continue
    assert names == [f"payments.{i:04d}" for i in range(5)]


def test_list_continue_after_compaction_is_410_expired(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    _add(fake_kube, 3)
    api = _api(kubeconfig)
    first = api.list_event_for_all_namespaces(limit=1)
    _add(fake_kube, 1, namespace="later")
    fake_kube.compact()
    with pytest.raises(client.ApiException) as raised:
        api.list_event_for_all_namespaces(limit=1, _continue=first.metadata._continue)
    assert raised.value.status == 410
    assert json.loads(raised.value.body)["reason"] == "Expired"


def test_namespaced_list_only_returns_that_namespace(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _add(fake_kube, 2, namespace="a")
    _add(fake_kube, 3, namespace="b")
    assert len(_api(kubeconfig).list_namespaced_event("b").items) == 3


def test_list_items_carry_managed_fields_but_no_kind(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _add(fake_kube, 1)
    response = _api(kubeconfig).list_event_for_all_namespaces(_preload_content=False)
    item = json.loads(response.data)["items"][0]
    assert "kind" not in item
    assert item["metadata"]["managedFields"]


def test_watch_streams_changes_after_the_version_then_times_out(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    _add(fake_kube, 2)
    threading.Timer(0.3, lambda: _add(fake_kube, 1, namespace="late")).start()
    started = time.monotonic()
    lines = _watch_lines(_api(kubeconfig), resource_version="1", timeout_seconds=1)
    assert 0.9 < time.monotonic() - started < 3
    changes = [(line["type"], line["object"]["metadata"]["resourceVersion"]) for line in lines]
    assert changes == [("ADDED", "2"), ("ADDED", "3")]
    assert lines[0]["object"]["kind"] == "Event"


def test_watch_sends_bookmarks_only_when_asked(fake_kube: FakeKube, kubeconfig: Path) -> None:
    _add(fake_kube, 1)
    api = _api(kubeconfig)
    with_bookmarks = _watch_lines(
        api, resource_version="1", allow_watch_bookmarks=True, timeout_seconds=1
    )
    assert {line["type"] for line in with_bookmarks} == {"BOOKMARK"}
    assert with_bookmarks[-1]["object"]["metadata"]["resourceVersion"] == "1"
    assert _watch_lines(api, resource_version="1", timeout_seconds=1) == []


def test_a_quiet_server_sends_no_bookmarks_even_when_asked_as_a_real_one_for_events(
    kubeconfig: Path,
) -> None:
    quiet = FakeKube(bookmark_interval_s=0.1, bookmarks=False)
    quiet.serve()
    try:
        _add(quiet, 1)
        config = quiet.write_kubeconfig(kubeconfig.with_name("quiet-kubeconfig"))
        started = time.monotonic()
        lines = _watch_lines(
            _api(config), resource_version="1", allow_watch_bookmarks=True, timeout_seconds=1
        )
        assert lines == []  # nothing at all until the timeout ends it
        assert time.monotonic() - started > 0.9
    finally:
        quiet.stop()


def test_after_a_reset_versions_start_low_and_a_watch_from_above_waits_silently(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    _add(fake_kube, 5)
    fake_kube.reset()
    assert fake_kube.events() == []
    _add(fake_kube, 2, namespace="again")
    api = _api(kubeconfig)
    assert api.list_event_for_all_namespaces(limit=1).metadata.resource_version == "2"
    # The watch from the old, higher version is accepted and carries nothing: what a real API
    # server does when etcd was wiped or restored behind it.
    assert _watch_lines(api, resource_version="5", timeout_seconds=1) == []


def test_a_reset_to_a_backup_keeps_what_existed_at_its_version(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    added = _add(fake_kube, 4)
    fake_kube.reset(to=2)
    assert [e["metadata"]["name"] for e in fake_kube.events()] == [
        e["metadata"]["name"] for e in added[:2]
    ]
    assert fake_kube.resource_version == 2
    assert fake_kube.apply("ADDED", rollout_event("R", "m"))["metadata"]["resourceVersion"] == "3"


def test_a_restart_can_answer_the_first_requests_with_403_as_rbac_warms_up(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    fake_kube.fail_next(500)
    fake_kube.restart(down_s=0.1, forbidden=2)
    api = _api(kubeconfig)
    statuses = []
    for _ in range(3):
        with pytest.raises(client.ApiException) as raised:
            api.list_event_for_all_namespaces()
        statuses.append(raised.value.status)
    assert statuses == [403, 403, 500]
    assert api.list_event_for_all_namespaces().items == []


def test_watch_from_a_compacted_version_gets_an_error_event_with_410(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    _add(fake_kube, 3)
    fake_kube.compact()
    lines = _watch_lines(_api(kubeconfig), resource_version="1", timeout_seconds=5)
    assert len(lines) == 1
    assert lines[0]["type"] == "ERROR"
    assert lines[0]["object"]["code"] == 410
    assert lines[0]["object"]["reason"] == "Expired"


def test_repeats_are_modified_with_the_same_uid_and_deletes_are_seen(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    [first] = _add(fake_kube, 1)
    name = first["metadata"]["name"]
    fake_kube.apply("MODIFIED", {"metadata": {"namespace": "billing", "name": name}, "count": 2})
    fake_kube.apply("DELETED", {"metadata": {"namespace": "billing", "name": name}})
    lines = _watch_lines(_api(kubeconfig), resource_version="1", timeout_seconds=1)
    assert [line["type"] for line in lines] == ["MODIFIED", "DELETED"]
    assert lines[0]["object"]["metadata"]["uid"] == first["metadata"]["uid"]
    assert lines[0]["object"]["count"] == 2
    assert fake_kube.events() == []


def test_injected_faults_answer_the_next_requests(fake_kube: FakeKube, kubeconfig: Path) -> None:
    fake_kube.fail_next(429, count=2)
    api = _api(kubeconfig)
    for _ in range(2):
        with pytest.raises(client.ApiException) as raised:
            api.list_event_for_all_namespaces()
        assert raised.value.status == 429
    assert api.list_event_for_all_namespaces().items == []


def test_scenario_files_are_json_lines_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('# comment\n{"after_s": 0, "type": "ADDED", "object": {}}\n\n')
    assert load_scenario(path) == [{"after_s": 0, "type": "ADDED", "object": {}}]


def test_the_canary_scenario_loads() -> None:
    steps = load_scenario(
        Path(__file__).resolve().parents[2] / "deploy/local/scenarios/canary.jsonl"
    )
    assert sum(1 for s in steps if s["object"]["reason"] == "RolloutCompleted") == 1


def test_new_events_can_be_posted_while_it_runs(fake_kube: FakeKube, kubeconfig: Path) -> None:
    import urllib.request

    steps = [
        {"type": "ADDED", "object": rollout_event("RolloutResumed", "Rollout is resumed")},
        {
            "type": "ADDED",
            "object": rollout_event("RolloutPaused", "Rollout is paused (CanaryPauseStep)"),
        },
    ]
    body = "\n".join(json.dumps(s) for s in steps).encode()
    request = urllib.request.Request(
        f"{fake_kube.url}/herald-fake/events", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
    reasons = [e.reason for e in _api(kubeconfig).list_event_for_all_namespaces().items]
    assert sorted(reasons) == ["RolloutPaused", "RolloutResumed"]

"""The simulated API server generating Events itself and keeping a bounded history (benchmarks)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from herald_dev.fakekube import GENERATED_AT, FakeKube, generated_uid

TEMPLATES: list[dict[str, Any]] = [
    {
        "metadata": {"namespace": "billing"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "billing"},
        "reason": "Started",
        "message": "Started container app",
    },
    {
        "metadata": {"namespace": "shop"},
        "involvedObject": {"kind": "Rollout", "name": "cart", "namespace": "shop"},
        "reason": "RolloutStepCompleted",
        "message": "Rollout step 1/8 completed (setWeight: 10)",
    },
]


def _changes(fake: FakeKube, after: int) -> Iterator[list[dict[str, Any]]]:
    return fake.watch_batches(
        namespace=None, resource_version=str(after), bookmarks=False, timeout_s=5
    )


def test_generated_events_come_from_the_templates_in_order_with_uid_and_creation_stamp() -> None:
    fake = FakeKube(bookmarks=False)
    answer = fake.generate(TEMPLATES, rate=100_000, count=5, seed="run1")
    assert sum(count for _, count, _ in answer["batches"]) == 5
    assert answer["offered"] > 0
    changes = next(_changes(fake, 0))
    objects = [c["object"] for c in changes]
    assert [c["type"] for c in changes] == ["ADDED"] * 5
    assert [o["reason"] for o in objects] == ["Started", "RolloutStepCompleted"] * 2 + ["Started"]
    assert [o["metadata"]["uid"] for o in objects] == [generated_uid("run1", i) for i in range(5)]
    assert objects[3]["metadata"]["name"] == "cart.run1-00000003"
    assert objects[3]["metadata"]["namespace"] == "shop"
    assert [o["metadata"]["resourceVersion"] for o in objects] == ["1", "2", "3", "4", "5"]
    stamps = [float(o["metadata"]["annotations"][GENERATED_AT]) for o in objects]
    assert stamps == sorted(stamps)
    assert "annotations" not in TEMPLATES[0]["metadata"]  # the templates are left as they were


def test_generate_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        FakeKube().generate(TEMPLATES, rate=0, count=1, seed="s")


def test_a_bounded_history_drops_its_oldest_changes_and_their_events() -> None:
    fake = FakeKube(bookmarks=False, max_changes=100)
    fake.generate(TEMPLATES, rate=1_000_000, count=1000, seed="s")
    assert fake.resource_version == 1000
    assert len(fake.events()) <= 300
    newest = fake.events()[-1]
    assert newest["metadata"]["uid"] == generated_uid("s", 999)
    old = next(iter(_changes(fake, 1)))
    assert old[0]["type"] == "ERROR"
    assert old[0]["object"]["code"] == 410


def test_a_watch_that_falls_behind_a_bounded_history_ends_with_410() -> None:
    fake = FakeKube(bookmarks=False, max_changes=100)
    fake.generate(TEMPLATES, rate=1_000_000, count=10, seed="a")
    stream = _changes(fake, 10)
    fake.generate(TEMPLATES, rate=1_000_000, count=1000, seed="b")
    first = next(stream)
    assert first[0]["type"] == "ERROR"
    assert first[0]["object"]["code"] == 410


def test_a_watch_within_a_bounded_history_gets_every_change() -> None:
    fake = FakeKube(bookmarks=False, max_changes=100)
    fake.generate(TEMPLATES, rate=1_000_000, count=1000, seed="a")
    rv = fake.resource_version - 50
    changes = next(iter(_changes(fake, rv)))
    assert [int(c["object"]["metadata"]["resourceVersion"]) for c in changes] == list(
        range(rv + 1, 1001)
    )


def test_generate_over_http_reaches_a_kubernetes_client_watch(tmp_path: Path) -> None:
    fake = FakeKube(bookmarks=False, max_changes=1000)
    url = fake.serve()
    try:
        body = json.dumps({"templates": TEMPLATES, "rate": 50_000, "count": 200, "seed": "h"})
        request = urllib.request.Request(
            f"{url}/herald-fake/generate", data=body.encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        assert sum(count for _, count, _ in answer["batches"]) == 200
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
        response = api.list_event_for_all_namespaces(
            watch=True, resource_version="0", timeout_seconds=5, _preload_content=False
        )
        lines: list[dict[str, Any]] = []
        pending = b""
        for chunk in response.stream(amt=None, decode_content=True):
            pending += chunk
            *done, pending = pending.split(b"\n")
            lines += [json.loads(line) for line in done if line.strip()]
            if len(lines) >= 200:
                break
        response.close()
        assert len(lines) == 200
        assert {c["object"]["metadata"]["uid"] for c in lines} == {
            generated_uid("h", i) for i in range(200)
        }
    finally:
        fake.stop()


def test_a_bad_generate_request_is_answered_400() -> None:
    fake = FakeKube()
    url = fake.serve()
    try:
        request = urllib.request.Request(
            f"{url}/herald-fake/generate", data=b'{"rate": 10}', method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=10)
        raised.value.close()
        assert raised.value.code == 400
    finally:
        fake.stop()

"""The domain topic is readable by every CloudEvents SDK: the records of an end-to-end run (Events
replayed through `collectors replay`, the processor as a real Faust worker) read with the Java SDK's
Kafka deserializer and with the Python SDK give back every event our own decoder reads, with the
same attributes and data. And why the `content-type` header matters: without it (every record
written before it was added) the Java SDK cannot read a record at all."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event

from herald_contracts import (
    DOMAIN_CONTENT_TYPE,
    EVENT_TYPES,
    DomainEvent,
    decode_domain_event,
    domain_record_headers,
    encode_domain_event,
    parse_time,
)
from herald_dev.processes import ServiceProcess
from processors.packs import load_catalogue
from tests.conftest import Topics
from tests.consumers import sdks
from tests.consumers.sdks import read_with_java_sdk, read_with_python_sdk
from tests.processors.test_sequences import build
from tests.support import consume, domain_event, produce, replay

SHOP = ("mgmt", "Application", "argocd", "shop")
DEST = {"dest-server": "https://shop.example:6443", "dest-namespace": "shop"}


def _ids_per_key(keyed_ids: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(key, id) pairs in the order read from their partition -> each key's ids in that order."""
    per_key: dict[str, list[str]] = defaultdict(list)
    for key, event_id in keyed_ids:
        per_key[key].append(event_id)
    return dict(per_key)


def _same_event(read: dict[str, Any], event: DomainEvent) -> None:
    """What the Java consumer printed for a record is the event our decoder read from it."""
    assert read["key"] == event.key
    assert read["specversion"] == "1.0"
    assert (read["id"], read["type"], read["source"], read["subject"]) == (
        event.id,
        event.type,
        event.source,
        event.subject,
    )
    assert parse_time(read["time"], field="time") == parse_time(event.time, field="time")
    assert read["datacontenttype"] == "application/json"
    assert read["dataschema"] == event.dataschema
    assert read["extensions"] == {}
    assert read["data"] == event.data


def test_the_python_sdk_reads_an_encoded_event_and_its_dataschema() -> None:
    event = domain_event(1, catalogue="rollout.completed")
    message = KafkaMessage(
        headers=dict(domain_record_headers()),
        key=event.key.encode(),
        value=encode_domain_event(event),
    )
    read = from_kafka_event(message)
    assert (read.get_id(), read.get_type(), read.get_source(), read.get_subject()) == (
        event.id,
        event.type,
        event.source,
        event.subject,
    )
    assert read.get_dataschema() == event.dataschema
    assert read.get_datacontenttype() == "application/json"
    assert read.get_data() == event.data
    # The SDK hands the record key over as the `partitionkey` extension.
    assert read.get_extension("partitionkey") == event.key


def test_the_java_and_python_sdks_read_every_record_of_an_end_to_end_run(
    java_consumer: Path,
    kafka: str,
    infra_env: dict[str, str],
    topics: Topics,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    script, expected = build()
    # The catalogue types the sequence lacks (one with a user name beyond ASCII), and the Flux
    # pack's, which the processor below enables by name.
    for reason, message in (
        ("ResourceActionRan", "zoë ran action restart on resource apps/Deployment/shop/web"),
        ("ResourceUpdated", "zoë updated application spec"),
        ("ResourceDeleted", "zoë deleted application"),
    ):
        script.add(*SHOP, reason, message, component="argocd-server", annotations=DEST)
    apps = ("mgmt", "Kustomization", "flux-system", "apps")
    revision = {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:" + "4e1d9c2b" * 5}
    script.add(*apps, "BuildFailed", "kustomize build failed: x", event_type="Warning")
    script.add(
        *apps,
        "ReconciliationSucceeded",
        "Reconciliation finished in 1.2s, next run in 10m0s",
        annotations=revision,
    )
    web = ("mgmt", "HelmRelease", "web", "web")
    chart = {"helm.toolkit.fluxcd.io/revision": "1.2.0"}
    script.add(
        *web,
        "UpgradeFailed",
        "Helm upgrade failed for release web/web with chart web@1.2.0: timed out",
        event_type="Warning",
        annotations=chart,
    )
    script.add(
        *web,
        "RollbackSucceeded",
        "Helm rollback to previous release web/web.v3 with chart web@1.1.0 succeeded",
        annotations=chart,
    )
    total = sum(len(events) for events in expected.values()) + 7
    replay(script.lines, env={**infra_env, **topics.env()}, path=tmp_path / "sequence.jsonl")
    services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"sdks-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_PROCESSOR_RULE_PACKS": "argo-rollouts,argo-cd,flux",
        },
    )
    records = consume(kafka, topics.domain, count=total, timeout_s=90)
    assert len(records) == total
    for record in records:
        assert record.headers == {"content-type": DOMAIN_CONTENT_TYPE.encode()}
    ours = [decode_domain_event(r.value, key=r.key) for r in records]
    by_id = {event.id: event for event in ours}
    assert len(by_id) == total
    # Every type of the packs the processor enabled (the kubernetes pack's are not).
    enabled = load_catalogue(builtin=("argo-rollouts", "argo-cd", "flux")).types
    assert {event.catalogue_name for event in ours} == set(enabled)
    assert set(enabled) <= set(EVENT_TYPES)
    in_order = sorted(zip(records, ours, strict=True), key=lambda r: (r[0].partition, r[0].offset))

    java = read_with_java_sdk(java_consumer, kafka, topics.domain)
    assert java.returncode == 0, java.stderr
    assert sorted(read["id"] for read in java.records) == sorted(by_id)
    for read in java.records:
        _same_event(read, by_id[read["id"]])
    java_in_order = sorted(java.records, key=lambda r: (r["partition"], r["offset"]))
    assert _ids_per_key((r["key"], r["id"]) for r in java_in_order) == _ids_per_key(
        (e.key, e.id) for _, e in in_order
    )

    python = read_with_python_sdk(kafka, topics.domain, count=total)
    assert sorted(read.event.get_id() for read in python) == sorted(by_id)
    for read in python:
        event = by_id[read.event.get_id()]
        assert read.headers == {"content-type": DOMAIN_CONTENT_TYPE.encode()}
        assert (read.event.get_type(), read.event.get_source(), read.event.get_subject()) == (
            event.type,
            event.source,
            event.subject,
        )
        assert read.event.get_time() == parse_time(event.time, field="time")
        assert read.event.get_dataschema() == event.dataschema
        assert read.event.get_data() == event.data
        assert read.event.get_extension("partitionkey") == event.key


def test_without_the_content_type_header_the_java_sdk_cannot_read_a_record(
    java_consumer: Path, kafka: str, topics: Topics
) -> None:
    """By the Kafka protocol binding (section 3) a record without a `content-type` naming a
    CloudEvents format is in binary mode; with no `ce_` headers either, the Java SDK finds no
    encoding and refuses it. Records written before the header was added are like this; our own
    decoder and the Python SDK (lenient: it looks for `ce_` headers, not the content type) still
    read them."""
    event = domain_event(1, catalogue="rollout.completed")
    produce(kafka, topics.domain, [(event.key.encode(), encode_domain_event(event))])

    java = read_with_java_sdk(java_consumer, kafka, topics.domain, timeout_s=30)
    assert java.returncode == 1, java.stderr
    assert java.records == []
    assert "cannot read the record at" in java.stderr
    assert "Unknown encoding" in java.stderr, java.stderr

    [record] = consume(kafka, topics.domain, count=1)
    assert record.headers == {}
    assert decode_domain_event(record.value, key=record.key).id == event.id
    [python] = read_with_python_sdk(kafka, topics.domain, count=1)
    assert python.event.get_id() == event.id


def test_without_java_or_maven_the_consumer_build_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CI has both; a machine without them fails these tests naming the tools, never skips them."""
    monkeypatch.setattr(
        sdks.shutil, "which", lambda tool: None if tool == "mvn" else "/usr/bin/java"
    )
    with pytest.raises(sdks.JavaConsumerError, match=r"mvn not found.*Java 17 and Maven"):
        sdks.ensure_java_consumer()

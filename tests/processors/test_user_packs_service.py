"""A user's rule pack, loaded from a directory by a real `python -m processors` on the real broker,
its events delivered as signed webhooks by a real `python -m dispatchers` that has never heard of
the pack's types."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Resource

from herald_dev.processes import ServiceProcess
from herald_dev.receiver import Receiver
from processors.packs import load_catalogue
from processors.schemas import data_schemas, with_types
from tests.conftest import Topics
from tests.processors.test_rule_packs import FLAGGER_PACK, flagger_event
from tests.support import SCHEMAS, consume, replay, rollout_event, schema_registry
from tests.test_end_to_end import SECRET, subscribe


def validate_user_event(event: dict[str, Any], packs: Path) -> None:
    """Against the envelope and data schema `rules schemas` derives with the user's packs."""
    catalogue = load_catalogue(directory=packs)
    envelope = json.loads((SCHEMAS / "deploy-event.v1.schema.json").read_text())
    registry = schema_registry()
    for text in data_schemas(catalogue).values():
        schema = json.loads(text)
        registry = registry.with_resource(schema["$id"], Resource.from_contents(schema))
    jsonschema.Draft202012Validator(
        with_types(envelope, catalogue),
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    ).validate(event)


def test_a_user_pack_from_a_directory_turns_a_custom_controllers_events_into_delivered_webhooks(
    kafka: str,
    topics: Topics,
    infra_env: dict[str, str],
    database_url: str,
    services: Callable[..., ServiceProcess],
    tmp_path: Path,
) -> None:
    packs = tmp_path / "packs"  # as a ConfigMap mounts it: one file per key
    packs.mkdir()
    (packs / "flagger.yaml").write_text(FLAGGER_PACK)
    events = [
        flagger_event("Advance podinfo.shop canary weight 20"),
        flagger_event(
            "Rolling back podinfo.shop failed checks threshold reached 5 (latency)",
            type_="Warning",
        ),
        flagger_event("Initialization done! podinfo.shop"),  # a known format: nothing
        rollout_event("RolloutUpdated", "Rollout updated to revision 3"),  # the built-in packs too
    ]
    replay(
        [json.dumps({"_cluster": "prod-eu", **e}) for e in events],
        env={**infra_env, **topics.env()},
        path=tmp_path / "events.jsonl",
    )
    services(
        "processors",
        {
            **topics.env(),
            "HERALD_PROCESSOR_APP_ID": f"test-user-packs-{uuid.uuid4().hex[:8]}",
            "HERALD_PROCESSOR_DATA_DIR": str(tmp_path / "data"),
            "HERALD_PROCESSOR_RULE_DIR": str(packs),
        },
    )
    records = consume(kafka, topics.domain, count=3, timeout_s=90)
    got = {e["type"]: e for e in (json.loads(r.value or b"") for r in records)}
    assert set(got) == {
        "dev.herald.flagger.canary.weight_advanced",
        "dev.herald.flagger.canary.rolled_back",
        "dev.herald.rollout.update_started",
    }
    weight = got["dev.herald.flagger.canary.weight_advanced"]
    validate_user_event(weight, packs)
    assert weight["dataschema"] == (
        "https://herald.dev/schemas/data/flagger.canary.weight_advanced.v1.schema.json"
    )
    assert weight["subject"] == "podinfo"
    assert {k: weight["data"][k] for k in ("kind", "target", "weight", "team")} == {
        "kind": "Canary",
        "target": "podinfo.shop",
        "weight": 20,
        "team": "checkout",
    }
    rolled_back = got["dev.herald.flagger.canary.rolled_back"]["data"]
    assert (rolled_back["failed_checks"], rolled_back["checks"], rolled_back["warning"]) == (
        5,
        ["latency"],
        True,
    )
    assert got["dev.herald.rollout.update_started"]["data"]["revision"] == 3

    # A subscription on the pack's types, by a dispatcher that loads no packs.
    receiver = Receiver(secret=SECRET)
    receiver.serve()
    try:
        env = {
            **infra_env,
            **topics.env(),
            "HERALD_DATABASE_URL": database_url,
            "HERALD_ALLOW_PRIVATE_NETWORKS": "true",  # the receiver listens on 127.0.0.1
            "HERALD_DISPATCHER_GROUP_ID": f"test-user-packs-{uuid.uuid4().hex[:8]}",
        }
        subscribe(env, receiver.url, "--event-type", "dev.herald.flagger.canary.*")
        services("dispatchers", env)
        delivered = receiver.wait_for(2, timeout_s=60)
    finally:
        receiver.stop()
    assert [r.event for r in delivered] == [
        got["dev.herald.flagger.canary.weight_advanced"],
        got["dev.herald.flagger.canary.rolled_back"],
    ]
    assert all(r.verified for r in delivered), [r.reason for r in delivered]

"""`python -m processors rules check|test|schemas`, and the published schemas derived from the packs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
from referencing import Resource

from herald_contracts import EVENT_TYPES
from processors.interpreting import interpret
from processors.packs import BUILTIN_PACKS, SCHEMA_FILE, known_catalogue, load_catalogue
from processors.schemas import data_schemas, with_types
from tests.processors.test_rule_packs import FLAGGER_PACK, flagger_event, record
from tests.support import rollout_event, schema_registry

ROOT = Path(__file__).resolve().parents[2]


def rules(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "processors", "rules", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_the_published_data_schemas_are_those_the_built_in_packs_derive() -> None:
    derived = data_schemas(known_catalogue())
    published = {
        p.relative_to(ROOT / "schemas").as_posix(): p.read_text()
        for p in (ROOT / "schemas" / "data").glob("*.v1.schema.json")
        if p.name != "common.v1.schema.json"
    }
    assert derived == published
    assert {f"data/{t}.v1.schema.json" for t in EVENT_TYPES} == set(derived)


def test_the_published_envelope_lists_the_types_the_built_in_packs_derive() -> None:
    published = json.loads((ROOT / "schemas" / "deploy-event.v1.schema.json").read_text())
    assert with_types(published, known_catalogue()) == published


def test_the_published_rule_pack_schema_is_the_one_the_processor_validates_with() -> None:
    assert (ROOT / "schemas" / "rule-pack.v1.schema.json").read_text() == SCHEMA_FILE.read_text()


def test_the_built_in_packs_are_valid_rule_packs_by_the_published_schema() -> None:
    import yaml

    schema = json.loads(SCHEMA_FILE.read_text())
    for name in BUILTIN_PACKS:
        pack = yaml.safe_load((ROOT / "processors" / "packs" / f"{name}.yaml").read_text())
        jsonschema.Draft202012Validator(schema).validate(pack)


def test_rules_check_lists_each_packs_types_and_their_dataschema(tmp_path: Path) -> None:
    (tmp_path / "flagger.yaml").write_text(FLAGGER_PACK)
    result = rules("check", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'flagger.yaml'}: pack flagger: 4 rules, OK" in result.stdout
    assert (
        "emits dev.herald.flagger.canary.rolled_back"
        "  https://herald.dev/schemas/data/flagger.canary.rolled_back.v1.schema.json"
    ) in result.stdout


def test_rules_check_refuses_a_broken_pack_naming_file_rule_and_reason(tmp_path: Path) -> None:
    (tmp_path / "flagger.yaml").write_text(FLAGGER_PACK.replace("{int: weight}", "{int: wieght}"))
    result = rules("check", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'flagger.yaml'}: rule 'weight-advanced'" in result.stderr
    assert "reads groups ['wieght'] the message lacks" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_test_shows_the_rule_and_event_of_each_line_or_why_none_matched(
    tmp_path: Path,
) -> None:
    (tmp_path / "flagger.yaml").write_text(FLAGGER_PACK)
    pod = rollout_event(
        "Pulled",
        "pulled",
        component="kubelet",
        involved={"kind": "Pod", "apiVersion": "v1", "namespace": "shop", "name": "p"},
    )
    aborted = rollout_event("RolloutAborted", "Rollout aborted update to revision 3")
    timed_out = rollout_event("RolloutAborted", 'Rollout "payments" has timed out progressing.')
    lines = [
        flagger_event("Advance podinfo.shop canary weight 20"),
        flagger_event("Canary is having a think"),
        flagger_event("Initialization done! podinfo.shop"),
        pod,
        aborted,
        timed_out,
        aborted,
    ]
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join(json.dumps({"_cluster": "prod-eu", **e}) for e in lines) + "\nnot json\n"
    )
    result = rules("test", str(tmp_path), str(events))
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    said = [line for line in out if not line.startswith("  ")]
    assert said == [
        f"{events}:1: rule flagger/weight-advanced",
        f"{events}:2: no rule's pattern matched (flagger/weight-advanced, flagger/promoted,"
        " flagger/rolled-back, flagger/initialized): flagger/fallback of Synced, flagged",
        f"{events}:3: rule flagger/initialized: a known format that is not a transition: nothing",
        f"{events}:4: no rule for group '', kind 'Pod', component 'kubelet', reason 'Pulled'",
        f"{events}:5: rule argo-rollouts/aborted",
        f"{events}:6: rule argo-rollouts/timed-out: suppressed by the object's state (times_out)",
        f"{events}:7: a repeat already processed: nothing",
        f"{events}:8: not an Event: Expecting value: line 1 column 1 (char 0)",
    ]
    first = json.loads(out[1])
    assert first["type"] == "dev.herald.flagger.canary.weight_advanced"
    assert first["data"]["weight"] == 20


def test_rules_schemas_writes_a_schema_per_type_that_the_events_of_a_user_pack_meet(
    tmp_path: Path,
) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "flagger.yaml").write_text(FLAGGER_PACK)
    out = tmp_path / "out"
    envelope = ROOT / "schemas" / "deploy-event.v1.schema.json"
    result = rules("schemas", str(out), str(packs), "--envelope", str(envelope))
    assert result.returncode == 0, result.stderr
    assert (out / "rule-pack.v1.schema.json").exists()
    derived_envelope = json.loads((out / "deploy-event.v1.schema.json").read_text())
    assert (out / "data" / "rollout.completed.v1.schema.json").exists()
    catalogue = load_catalogue(directory=packs)
    for message, type_ in [
        ("Advance podinfo.shop canary weight 20", "Normal"),
        ("Rolling back podinfo.shop failed checks threshold reached 5 (a, b)", "Warning"),
        ("Promotion completed! Scaling down podinfo.shop", "Normal"),
        ("Something else entirely", "Normal"),
    ]:
        [event] = interpret(
            record(flagger_event(message, type_=type_)), last_n=None, catalogue=catalogue
        ).events
        schema = json.loads((out / "data" / f"{event.catalogue_name}.v1.schema.json").read_text())
        assert schema["$id"] == event.dataschema
        registry = schema_registry().with_resource(schema["$id"], Resource.from_contents(schema))
        jsonschema.Draft202012Validator(schema, registry=registry).validate(event.data)
        jsonschema.Draft202012Validator(derived_envelope, registry=registry).validate(
            event.to_cloudevent()
        )

"""Rule packs: a user's pack turns a custom controller's Events into domain events; a bad pack is
refused naming its file, its rule and the reason; the converters do what docs/catalogue.md says."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from herald_contracts import OwnerRef, Ownership, RawRecord, WatchType, encode_raw_record
from processors.catalogue import Catalogue
from processors.converters import FieldError, compile_field, display_revisions
from processors.interpreting import RolloutState, interpret
from processors.packs import (
    BUILTIN_PACKS,
    DEFAULT_PACKS,
    PackError,
    builtin_catalogue,
    load_catalogue,
)
from processors.settings import ProcessorSettings, SettingsError
from tests.support import rollout_event

FLAGGER_PACK = r"""
pack: flagger
description: Flagger's canary analysis, as a user would write it.
type_prefix: flagger.
types:
  flagger.canary.synced:
    description: Any other Synced notice (the reason's fallback).
    fields: {}
  flagger.canary.weight_advanced:
    fields:
      target: {type: string}
      weight: {type: integer}
  flagger.canary.promoted:
    fields:
      target: {type: string}
      by: {type: string, nullable: true, when_null: {annotation: flagger.app/operator}}
  flagger.canary.rolled_back:
    fields:
      target: {type: string}
      failed_checks: {type: integer}
      checks: {type: list}
      warning: {type: boolean}
sources:
  - group: flagger.app
    kind: Canary
    components: [flagger]
    fields:
      team: {annotation: team}
    fallbacks:
      Synced: flagger.canary.synced
    rules:
      - name: weight-advanced
        reason: Synced
        message: 'Advance (?P<target>\S+) canary weight (?P<weight>\d+)'
        emits: flagger.canary.weight_advanced
        fields:
          target: {string: target}
          weight: {int: weight}
      - name: promoted
        reason: Synced
        message: 'Promotion completed! Scaling down (?P<target>\S+)'
        emits: flagger.canary.promoted
        fields:
          target: {string: target}
      - name: rolled-back
        reason: Synced
        event_type: Warning
        message: 'Rolling back (?P<target>\S+) failed checks threshold reached (?P<n>\d+)(?: \((?P<checks>[^)]*)\))?'
        emits: flagger.canary.rolled_back
        fields:
          target: {string: target}
          failed_checks: {int: n}
          checks: {list: checks, separator: ","}
          warning: {const: true}
      - name: initialized
        reason: Synced
        message: 'Initialization done! \S+'
"""

CANARY = {
    "kind": "Canary",
    "apiVersion": "flagger.app/v1beta1",
    "namespace": "shop",
    "name": "podinfo",
}


def flagger_event(message: str, *, type_: str = "Normal", **kw: Any) -> dict[str, Any]:
    event = rollout_event(
        "Synced", message, component="flagger", reporting="", involved=CANARY, **kw
    )
    event["type"] = type_
    event["metadata"]["annotations"] = {"team": "checkout"}
    return event


def record(event: dict[str, Any]) -> RawRecord:
    return RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:17:00Z",
        object=event,
    )


@pytest.fixture
def packs(tmp_path: Path) -> Path:
    directory = tmp_path / "packs"
    directory.mkdir()
    (directory / "flagger.yaml").write_text(FLAGGER_PACK)
    return directory


@pytest.fixture
def catalogue(packs: Path) -> Catalogue:
    return load_catalogue(directory=packs)


# -- a user's pack ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "type_", "expected_type", "fields"),
    [
        pytest.param(
            "Advance podinfo.shop canary weight 20",
            "Normal",
            "flagger.canary.weight_advanced",
            {"target": "podinfo.shop", "weight": 20},
            id="weight",
        ),
        pytest.param(
            "Promotion completed! Scaling down podinfo.shop",
            "Normal",
            "flagger.canary.promoted",
            {"target": "podinfo.shop", "by": None},
            id="promoted",
        ),
        pytest.param(
            "Rolling back podinfo.shop failed checks threshold reached 5 (latency, errors)",
            "Warning",
            "flagger.canary.rolled_back",
            {
                "target": "podinfo.shop",
                "failed_checks": 5,
                "checks": ["latency", "errors"],
                "warning": True,
            },
            id="rolled-back",
        ),
        pytest.param(
            "Rolling back podinfo.shop failed checks threshold reached 5",
            "Normal",
            "flagger.canary.synced",
            {},
            id="a-rule-of-another-event-type-does-not-match",
        ),
    ],
)
def test_a_user_pack_turns_a_custom_controllers_events_into_its_domain_events(
    catalogue: Catalogue,
    message: str,
    type_: str,
    expected_type: str,
    fields: dict[str, Any],
) -> None:
    outcome = interpret(
        record(flagger_event(message, type_=type_)), last_n=None, catalogue=catalogue
    )
    [event] = outcome.events
    assert event.type == "dev.herald." + expected_type
    assert event.dataschema == f"https://herald.dev/schemas/data/{expected_type}.v1.schema.json"
    # (herald_contracts.object_source pluralises a kind it does not know by adding `s`)
    assert event.source.startswith("/clusters/prod-eu/namespaces/shop/")
    assert event.source.endswith("/podinfo")
    assert event.key == "prod-eu/shop/Canary/podinfo"
    assert {k: event.data[k] for k in fields} == fields
    assert event.data["team"] == "checkout"  # the source's fields, from the Event's annotation
    assert event.data["source_message_understood"] is (expected_type != "flagger.canary.synced")


def test_a_users_known_format_gives_nothing_and_other_components_are_not_read(
    catalogue: Catalogue,
) -> None:
    assert (
        interpret(
            record(flagger_event("Initialization done! podinfo.shop")),
            last_n=None,
            catalogue=catalogue,
        ).events
        == ()
    )
    other = flagger_event("Advance podinfo.shop canary weight 20")
    other["source"] = {"component": "someone-else"}
    assert interpret(record(other), last_n=None, catalogue=catalogue).occurrence is None
    wrong_group = flagger_event("Advance podinfo.shop canary weight 20")
    wrong_group["involvedObject"]["apiVersion"] = "example.com/v1"
    assert interpret(record(wrong_group), last_n=None, catalogue=catalogue).occurrence is None


def test_a_type_fills_a_null_field_from_the_events_annotation(catalogue: Catalogue) -> None:
    event = flagger_event("Promotion completed! Scaling down podinfo.shop")
    event["metadata"]["annotations"]["flagger.app/operator"] = "carol"
    [domain] = interpret(record(event), last_n=None, catalogue=catalogue).events
    assert domain.data["by"] == "carol"


def test_the_built_in_packs_still_work_beside_a_users_pack(catalogue: Catalogue) -> None:
    outcome = interpret(
        record(rollout_event("RolloutUpdated", "Rollout updated to revision 3")),
        last_n=None,
        catalogue=catalogue,
    )
    assert [e.type for e in outcome.events] == ["dev.herald.rollout.update_started"]
    assert catalogue.packs == ("argo-rollouts", "argo-cd", "flagger")


def test_a_stateless_source_keeps_no_state(catalogue: Catalogue) -> None:
    outcome = interpret(
        record(flagger_event("Advance podinfo.shop canary weight 20")),
        last_n=None,
        rollout=RolloutState(),
        catalogue=catalogue,
    )
    assert (outcome.rollout_key, outcome.rollout) == (None, None)


def test_with_no_built_in_pack_enabled_argo_events_are_not_read(packs: Path) -> None:
    catalogue = load_catalogue(builtin=(), directory=packs)
    outcome = interpret(
        record(rollout_event("RolloutUpdated", "Rollout updated to revision 3")),
        last_n=None,
        catalogue=catalogue,
    )
    assert outcome.occurrence is None


# -- owner kinds ------------------------------------------------------------------------------------

OWNED_PACK = r"""
pack: restarts
type_prefix: restarts.
types:
  restarts.of_a_rollout: {fields: {container: {type: string}}}
  restarts.of_a_deployment: {fields: {container: {type: string}}}
sources:
  - group: ""
    kind: Pod
    components: [kubelet]
    owner_kinds: [Rollout]
    rules:
      - reason: BackOff
        message: 'Back-off restarting failed container (?P<c>\S+) in pod \S+'
        emits: restarts.of_a_rollout
        fields: {container: {string: c}}
  - group: ""
    kind: Pod
    components: [kubelet]
    owner_kinds: [Deployment, ReplicaSet]
    rules:
      - reason: BackOff
        message: 'Back-off restarting failed container (?P<c>\S+) in pod \S+'
        emits: restarts.of_a_deployment
        fields: {container: {string: c}}
"""


def _pod_back_off() -> dict[str, Any]:
    return rollout_event(
        "BackOff",
        "Back-off restarting failed container app in pod web-6f8b9c7d5-x2x9z_shop(0a1b)",
        component="kubelet",
        reporting="kubelet",
        involved={"apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": "web-x2x9z"},
    )


def _ref(kind: str, name: str, api_version: str = "apps/v1") -> OwnerRef:
    return OwnerRef(kind=kind, api_version=api_version, name=name, uid=f"uid-{name}")


@pytest.mark.parametrize(
    ("ownership", "expected"),
    [
        pytest.param(
            Ownership(
                owners=(
                    _ref("ReplicaSet", "web-6f8b9c7d5"),
                    _ref("Rollout", "web", "argoproj.io/v1alpha1"),
                ),
                workload=_ref("Rollout", "web", "argoproj.io/v1alpha1"),
            ),
            "restarts.of_a_rollout",
            id="a-rollouts-pod",
        ),
        pytest.param(
            Ownership(
                owners=(_ref("ReplicaSet", "web-6f8b9c7d5"), _ref("Deployment", "web")),
                workload=_ref("Deployment", "web"),
            ),
            "restarts.of_a_deployment",
            id="a-deployments-pod",
        ),
        pytest.param(
            Ownership(owners=(_ref("ReplicaSet", "web-6f8b9c7d5"),)),
            "restarts.of_a_deployment",
            id="a-bare-replica-sets-pod",
        ),
        pytest.param(
            Ownership(owners=(_ref("StatefulSet", "db"),), workload=_ref("StatefulSet", "db")),
            None,
            id="a-stateful-sets-pod",
        ),
        pytest.param(Ownership(), None, id="a-pod-owned-by-nothing"),
        pytest.param(None, None, id="owners-not-resolved"),
    ],
)
def test_a_source_can_match_on_the_resolved_owners_kind(
    tmp_path: Path, ownership: Ownership | None, expected: str | None
) -> None:
    (tmp_path / "restarts.yaml").write_text(OWNED_PACK)
    catalogue = load_catalogue(builtin=(), directory=tmp_path)
    raw = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:17:00Z",
        object=_pod_back_off(),
        ownership=ownership,
    )
    outcome = interpret(raw, last_n=None, catalogue=catalogue)
    assert [e.catalogue_name for e in outcome.events] == ([expected] if expected else [])
    if expected:
        assert outcome.events[0].data["container"] == "app"


def test_rules_test_reads_raw_records_with_their_owners(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "restarts.yaml").write_text(OWNED_PACK)
    owned = RawRecord(
        cluster="prod-eu",
        watch_type=WatchType.ADDED,
        collected_at="2026-08-20T09:17:00Z",
        object=_pod_back_off(),
        ownership=Ownership(
            owners=(_ref("Deployment", "web"),), workload=_ref("Deployment", "web")
        ),
    )
    unowned = _pod_back_off()
    unowned["metadata"]["uid"] = "another-event"
    events = tmp_path / "events.jsonl"
    events.write_text(encode_raw_record(owned).decode() + "\n" + json.dumps(unowned) + "\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "processors",
            "rules",
            "--packs",
            "none",
            "test",
            str(packs),
            str(events),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first, second = (line for line in result.stdout.splitlines() if not line.startswith("  "))
    assert "rule restarts/" in first
    assert '"type": "dev.herald.restarts.of_a_deployment"' in result.stdout
    assert "owner kinds []" in second


# -- bad packs ----------------------------------------------------------------------------------------


def _broken(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("pack", "rule", "reason"),
    [
        pytest.param(
            _broken(FLAGGER_PACK, r"(?P<weight>\d+)'", r"(?P<weight>\d+'"),
            "'weight-advanced'",
            "message is not a regular expression",
            id="pattern-does-not-compile",
        ),
        pytest.param(
            _broken(FLAGGER_PACK, "weight: {int: weight}", "weight: {int: percent}"),
            "'weight-advanced'",
            "reads groups ['percent'] the message lacks",
            id="field-reads-a-group-the-pattern-lacks",
        ),
        pytest.param(
            _broken(
                FLAGGER_PACK, "emits: flagger.canary.promoted", "emits: flagger.canary.promotd"
            ),
            "'promoted'",
            "a type the pack does not declare",
            id="emits-an-undeclared-type",
        ),
        pytest.param(
            _broken(FLAGGER_PACK, "weight: {int: weight}", "weight: {float: weight}"),
            "'weight-advanced'",
            "fields/weight",
            id="an-unknown-converter",
        ),
        pytest.param(
            _broken(
                FLAGGER_PACK,
                "target: {string: target}\n      - name: rolled-back",
                "targt: {string: target}\n      - name: rolled-back",
            ),
            "'promoted'",
            "['targt'] are not fields of flagger.canary.promoted",
            id="a-field-the-type-lacks",
        ),
        pytest.param(
            _broken(
                FLAGGER_PACK,
                "reason: Synced\n        message: 'Initialization",
                "resaon: Synced\n        message: 'Initialization",
            ),
            "'initialized'",
            "'reason' is a required property",
            id="a-rule-without-reason",
        ),
        pytest.param(
            _broken(FLAGGER_PACK, "type_prefix: flagger.", "type_prefix: rollout."),
            None,
            "belongs to a built-in pack",
            id="a-built-in-prefix",
        ),
        pytest.param(
            _broken(FLAGGER_PACK, "type_prefix: flagger.", "type_prefix: flux."),
            None,
            "belongs to a built-in pack",
            id="the-flux-prefix-even-when-flux-is-not-enabled",
        ),
        pytest.param(
            _broken(FLAGGER_PACK, "weight: {int: weight}", "weight: {int: weight, first: true}"),
            "'weight-advanced'",
            "`first` applies to",
            id="an-option-of-another-converter",
        ),
        pytest.param("pack: [unclosed", None, "not YAML", id="not-yaml"),
        pytest.param(
            _broken(FLAGGER_PACK, "team: {annotation: team}", "name: {annotation: team}"),
            None,
            "fields ['name'] are common fields",
            id="a-source-field-that-would-hide-a-common-one",
        ),
    ],
)
def test_a_bad_pack_is_refused_naming_the_file_the_rule_and_the_reason(
    tmp_path: Path, pack: str, rule: str | None, reason: str
) -> None:
    (tmp_path / "flagger.yaml").write_text(pack)
    with pytest.raises(PackError) as refused:
        load_catalogue(directory=tmp_path)
    assert refused.value.file == str(tmp_path / "flagger.yaml")
    if rule is None:
        assert refused.value.rule is None
    else:
        assert refused.value.rule is not None
        assert rule in refused.value.rule
    assert reason in refused.value.reason, refused.value.reason


def test_two_packs_with_one_name_or_prefix_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(FLAGGER_PACK)
    (tmp_path / "b.yaml").write_text(FLAGGER_PACK.replace("pack: flagger", "pack: flagger-two"))
    with pytest.raises(PackError, match=r"b\.yaml: type_prefix 'flagger\.' is also .*a\.yaml"):
        load_catalogue(directory=tmp_path)


def test_a_bad_pack_is_a_bad_setting(tmp_path: Path) -> None:
    (tmp_path / "flagger.yaml").write_text(
        FLAGGER_PACK.replace("(?P<weight>\\d+)'", "(?P<weight>\\d+'")
    )
    env = {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_PROCESSOR_RULE_DIR": str(tmp_path)}
    with pytest.raises(
        SettingsError, match=r"HERALD_PROCESSOR_RULE_DIR.*flagger\.yaml: rule 'weight-advanced'"
    ):
        ProcessorSettings.from_env(env)
    with pytest.raises(
        SettingsError, match="HERALD_PROCESSOR_RULE_PACKS names no built-in pack argo-workflows"
    ):
        ProcessorSettings.from_env(
            {
                "HERALD_KAFKA_BOOTSTRAP": "x:1",
                "HERALD_PROCESSOR_RULE_PACKS": "argo-rollouts,argo-workflows",
            }
        )
    settings = ProcessorSettings.from_env(
        {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_PROCESSOR_RULE_PACKS": "argo-cd"}
    )
    assert settings.catalogue.packs == ("argo-cd",)
    default = ProcessorSettings.from_env({"HERALD_KAFKA_BOOTSTRAP": "x:1"})
    assert default.rule_packs == DEFAULT_PACKS == ("argo-rollouts", "argo-cd")
    assert default.catalogue.packs == DEFAULT_PACKS


def test_the_flux_pack_is_enabled_by_name_only() -> None:
    settings = ProcessorSettings.from_env(
        {"HERALD_KAFKA_BOOTSTRAP": "x:1", "HERALD_PROCESSOR_RULE_PACKS": "argo-cd,flux"}
    )
    assert settings.catalogue.packs == ("argo-cd", "flux")
    assert "flux.kustomization_reconciled" in settings.catalogue.types
    assert "flux" in BUILTIN_PACKS
    assert not any(t.startswith("flux.") for t in builtin_catalogue().types)


def test_the_processor_refuses_a_broken_pack_at_start_naming_file_rule_and_reason(
    tmp_path: Path,
) -> None:
    (tmp_path / "flagger.yaml").write_text(
        FLAGGER_PACK.replace("emits: flagger.canary.promoted", "emits: flagger.canary.promotd")
    )
    result = subprocess.run(
        [sys.executable, "-m", "processors"],
        env={
            "PATH": "/usr/bin:/bin",
            "HERALD_METRICS_PORT": "0",
            "HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:1",
            "HERALD_PROCESSOR_RULE_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "bad setting: HERALD_PROCESSOR_RULE_DIR" in result.stderr
    assert f"{tmp_path / 'flagger.yaml'}: rule 'promoted'" in result.stderr
    assert "emits 'flagger.canary.promotd', a type the pack does not declare" in result.stderr
    assert "Traceback" not in result.stderr


# -- the built-in packs and the converters ------------------------------------------------------------


def test_the_built_in_packs_declare_the_published_event_types() -> None:
    from herald_contracts import EVENT_TYPES
    from processors.packs import known_catalogue

    # Every built-in pack's types are published, enabled by default or not.
    assert set(known_catalogue().types) == set(EVENT_TYPES)
    assert set(builtin_catalogue().types) < set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("spec", "groups", "expected"),
    [
        pytest.param({"string": "g"}, {"g": ""}, "", id="string-keeps-empty"),
        pytest.param({"string": "g"}, {}, None, id="string-absent-is-null"),
        pytest.param({"text": "g"}, {"g": ""}, None, id="text-empty-is-null"),
        pytest.param({"int": "g"}, {"g": "42"}, 42, id="int"),
        pytest.param({"flag": "g"}, {"g": "partial "}, True, id="flag-set"),
        pytest.param({"flag": "g"}, {}, False, id="flag-unset"),
        pytest.param(
            {"list": "g", "separator": ","}, {"g": "a, b,,c "}, ["a", "b", "c"], id="list"
        ),
        pytest.param(
            {"list": "g", "separator": None}, {"g": " a  b "}, ["a", "b"], id="list-whitespace"
        ),
        pytest.param(
            {"list": "g", "separator": ",", "first": True}, {"g": ""}, None, id="first-of-none"
        ),
        pytest.param(
            {"display_revisions": "g", "part": "target"},
            {"g": ">=1.0.0, <2.0.0 (1.9.3),main (abc123)"},
            [">=1.0.0, <2.0.0", "main"],
            id="display-revisions-targets",
        ),
        pytest.param({"const": ["x"]}, {}, ["x"], id="const"),
    ],
)
def test_converters(spec: dict[str, Any], groups: dict[str, str], expected: object) -> None:
    pattern = "".join(f"(?P<{g}>.*)" for g in groups) or "(?P<g>x)?"
    text = "".join(groups.values())
    found = re.fullmatch(pattern, text, re.DOTALL)
    assert found is not None
    convert, _ = compile_field(spec)
    assert convert(found, {}) == expected


def test_an_int_too_long_to_carry_is_a_field_error() -> None:
    convert, _ = compile_field({"int": "g"})
    found = re.fullmatch(r"(?P<g>\d+)", "9" * 19)
    with pytest.raises(FieldError, match="19 digits"):
        convert(found, {})


def test_display_revisions_that_do_not_read_as_sources_are_none() -> None:
    assert display_revisions("main") is None
    assert display_revisions("main (abc),") is None


def test_a_users_pack_may_not_take_a_built_in_packs_name(tmp_path: Path) -> None:
    """Else it would load while the built-in is off, then break the start once it is enabled."""
    (tmp_path / "kubernetes.yaml").write_text(
        FLAGGER_PACK.replace("pack: flagger", "pack: kubernetes")
    )
    with pytest.raises(PackError, match="built-in"):
        load_catalogue(builtin=(), directory=tmp_path)

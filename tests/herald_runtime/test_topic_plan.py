"""The topics plan (which topics, with what) and its diff against a broker's report: pure, and
`ensure` / `check` against the in-memory broker."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import pytest
import yaml

from herald_runtime.topics import strimzi
from herald_runtime.topics.__main__ import run
from herald_runtime.topics.drift import Observed, judge
from herald_runtime.topics.ensuring import BrokerUnavailableError, check, ensure
from herald_runtime.topics.memory import MemoryBroker
from herald_runtime.topics.plan import (
    DAY_MS,
    ENSURE_COMMAND,
    Role,
    TopicSettings,
    TopicSettingsError,
    TopicSpec,
    Wanted,
    herald_topics,
    missing_message,
    processor_topics,
)


def _by_role(settings: TopicSettings) -> dict[Role, TopicSpec]:
    return {spec.role: spec for spec in herald_topics(settings)}


def test_the_defaults_name_the_services_topics_and_keep_replay_and_dead_letters_for_days() -> None:
    specs = _by_role(TopicSettings.from_env({}))
    assert {role: spec.name for role, spec in specs.items()} == {
        Role.RAW: "herald.kube-events.v1",
        Role.DOMAIN: "herald.deploy-events.v1",
        Role.DEAD_LETTERS: "herald.dead-letters.v1",
        Role.CHECKPOINTS: "herald.collector-checkpoints.v1",
    }
    assert specs[Role.CHECKPOINTS].config["cleanup.policy"] == Wanted("compact")
    assert "retention.ms" not in specs[Role.CHECKPOINTS].config
    retention = {
        role: int(s.config["retention.ms"].value)
        for role, s in specs.items()
        if s.config.get("retention.ms")
    }
    assert retention[Role.DOMAIN] >= 7 * DAY_MS
    assert retention[Role.DEAD_LETTERS] > retention[Role.DOMAIN] > retention[Role.RAW]
    assert [specs[r].partitions for r in Role if r in specs] == [6, 6, 1, 1]
    assert all(spec.replication_factor is None for spec in specs.values())


def test_settings_from_the_env_shape_every_topic() -> None:
    specs = _by_role(
        TopicSettings.from_env(
            {
                "HERALD_RAW_TOPIC": "r",
                "HERALD_TOPIC_PARTITIONS": "12",
                "HERALD_TOPIC_REPLICATION_FACTOR": "3",
                "HERALD_TOPIC_MIN_INSYNC_REPLICAS": "2",
                "HERALD_DOMAIN_RETENTION_MS": "-1",
                "HERALD_KAFKA_MESSAGE_MAX_BYTES": "4000000",
            }
        )
    )
    raw = specs[Role.RAW]
    assert (raw.name, raw.partitions, raw.replication_factor) == ("r", 12, 3)
    assert raw.config["max.message.bytes"] == Wanted("4000000", minimum=4_000_000)
    assert specs[Role.DOMAIN].config["retention.ms"].value == "-1"
    assert all(s.config["min.insync.replicas"] == Wanted("2") for s in specs.values())
    assert specs[Role.DEAD_LETTERS].partitions == 1


def test_the_raw_topic_never_takes_less_than_the_brokers_default_record_size() -> None:
    raw = _by_role(TopicSettings.from_env({"HERALD_KAFKA_MESSAGE_MAX_BYTES": "70000"}))[Role.RAW]
    assert raw.config["max.message.bytes"] == Wanted("1048588", minimum=70_000)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        pytest.param(
            {"HERALD_TOPIC_PARTITIONS": "0"}, "HERALD_TOPIC_PARTITIONS", id="no-partitions"
        ),
        pytest.param(
            {"HERALD_TOPIC_PARTITIONS": "six"}, "HERALD_TOPIC_PARTITIONS", id="not-a-number"
        ),
        pytest.param(
            {"HERALD_RAW_TOPIC": "a topic"}, "HERALD_RAW_TOPIC", id="topic-name-kafka-refuses"
        ),
        pytest.param(
            {"HERALD_DOMAIN_RETENTION_MS": "1000"},
            "HERALD_DOMAIN_RETENTION_MS",
            id="retention-too-short",
        ),
        pytest.param(
            {"HERALD_TOPIC_REPLICATION_FACTOR": "2", "HERALD_TOPIC_MIN_INSYNC_REPLICAS": "3"},
            "HERALD_TOPIC_MIN_INSYNC_REPLICAS",
            id="min-insync-above-replicas",
        ),
        pytest.param(
            {"HERALD_KAFKA_MESSAGE_MAX_BYTES": "2000000000"},
            "HERALD_KAFKA_MESSAGE_MAX_BYTES",
            id="record-too-large",
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(TopicSettingsError, match=named):
        TopicSettings.from_env(env)


def test_the_processor_topics_are_fausts_names_for_its_app_id_and_tables() -> None:
    specs = processor_topics(
        TopicSettings.from_env(
            {"HERALD_PROCESSOR_APP_ID": "p1", "HERALD_PROCESSOR_REPLICATION_FACTOR": "3"}
        )
    )
    assert [(s.name, s.partitions, s.replication_factor) for s in specs] == [
        ("p1-occurrences-changelog", 6, 3),
        ("p1-rollouts-changelog", 6, 3),
        ("p1-__assignor-__leader", 1, 3),
    ]
    assert all(s.config["cleanup.policy"] == Wanted("compact") for s in specs[:2])


# -- the diff -------------------------------------------------------------------------------------

RAW = TopicSpec(
    "raw",
    Role.RAW,
    "HERALD_RAW_TOPIC",
    6,
    3,
    {
        "cleanup.policy": Wanted("delete"),
        "retention.ms": Wanted("259200000"),
        "max.message.bytes": Wanted("1048588", minimum=1_000_000),
    },
)
AS_WANTED = Observed(
    6, 3, {"cleanup.policy": "delete", "retention.ms": "259200000", "max.message.bytes": "1048588"}
)


@pytest.mark.parametrize(
    ("observed", "drifts"),
    [
        pytest.param(AS_WANTED, [], id="as-wanted"),
        pytest.param(
            replace(AS_WANTED, partitions=12, replication_factor=4),
            [],
            id="more-partitions-and-replicas-are-fine",
        ),
        pytest.param(
            replace(AS_WANTED, config={**AS_WANTED.config, "max.message.bytes": "8000000"}),
            [],
            id="larger-records-are-fine",
        ),
        pytest.param(
            replace(AS_WANTED, config={**AS_WANTED.config, "cleanup.policy": "delete,compact"}),
            [("cleanup.policy", True)],
            id="policy-list-differs",
        ),
        pytest.param(
            replace(AS_WANTED, config={**AS_WANTED.config, "max.message.bytes": "500000"}),
            [("max.message.bytes", True)],
            id="records-too-small",
        ),
        pytest.param(
            replace(AS_WANTED, config={**AS_WANTED.config, "retention.ms": "604800000"}),
            [("retention.ms", True)],
            id="other-retention",
        ),
        pytest.param(
            replace(AS_WANTED, partitions=3),
            [("partitions", False)],
            id="fewer-partitions-not-fixable",
        ),
        pytest.param(
            replace(AS_WANTED, replication_factor=1),
            [("replication.factor", False)],
            id="fewer-replicas-not-fixable",
        ),
    ],
)
def test_a_topic_is_judged_against_its_spec(
    observed: Observed, drifts: list[tuple[str, bool]]
) -> None:
    judged = judge(RAW, observed)
    assert [(d.key, d.fixable) for d in judged.drifts] == drifts
    assert judged.ok == (not drifts)


def test_a_missing_topic_is_judged_missing_naming_what_is_wanted() -> None:
    judged = judge(RAW, None)
    assert judged.missing
    assert not judged.ok
    assert "6 partitions" in judged.describe()
    assert "retention.ms=259200000" in judged.describe()


def test_the_wait_message_names_the_topics_and_the_command() -> None:
    message = missing_message(["a", "b"], bootstrap="k:9092")
    assert "'a', 'b'" in message
    assert "k:9092" in message
    assert ENSURE_COMMAND in message


# -- ensure and check, in memory ------------------------------------------------------------------


def test_ensure_creates_what_is_missing_then_changes_nothing() -> None:
    broker = MemoryBroker()
    specs = herald_topics(TopicSettings.from_env({}))
    first = ensure(broker, specs)
    assert [o.created for o in first] == [True] * 4
    assert all(o.ok for o in first)
    second = ensure(broker, specs)
    assert [o.describe().startswith("ok") for o in second] == [True] * 4
    assert broker.created == [s.name for s in specs]
    assert broker.altered == []
    assert all(j.ok for j in check(broker, specs))


def test_ensure_sets_drifting_configs_and_leaves_others_alone() -> None:
    settings = TopicSettings.from_env({})
    specs = herald_topics(settings)
    checkpoints = settings.checkpoint_topic
    broker = MemoryBroker(
        topics={checkpoints: Observed(1, 1, {"cleanup.policy": "delete", "segment.bytes": "1024"})}
    )
    [outcome] = [o for o in ensure(broker, specs) if o.name == checkpoints]
    assert outcome.altered == {"cleanup.policy": "compact"}
    assert outcome.ok
    assert broker.topics[checkpoints].config == {
        "cleanup.policy": "compact",
        "segment.bytes": "1024",
    }


def test_ensure_reports_fewer_partitions_and_does_not_change_them() -> None:
    settings = TopicSettings.from_env({})
    broker = MemoryBroker(topics={settings.raw_topic: Observed(2, 1, {"cleanup.policy": "delete"})})
    [raw, *others] = ensure(broker, herald_topics(settings))
    assert not raw.ok
    assert "2 partitions, wanted 6" in raw.describe()
    assert set(raw.altered) == {"retention.ms", "max.message.bytes"}  # what it can fix, it does
    assert broker.topics[settings.raw_topic].partitions == 2
    assert all(o.ok for o in others)


# -- the command, with the in-memory broker -------------------------------------------------------


def _run(
    argv: list[str], env: dict[str, str], broker: MemoryBroker
) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []
    code = run(
        argv, env, broker=lambda bootstrap, timeout_s: broker, out=out.append, err=err.append
    )
    return code, out, err


BOOTSTRAP = {"HERALD_KAFKA_BOOTSTRAP": "127.0.0.1:9"}


def test_check_exits_1_on_a_missing_topic_and_ensure_then_0() -> None:
    broker = MemoryBroker()
    code, out, _ = _run(["check"], BOOTSTRAP, broker)
    assert code == 1
    assert len(out) == 4
    assert all("missing" in line for line in out)
    assert broker.created == []
    assert _run(["ensure"], BOOTSTRAP, broker)[0] == 0
    assert _run(["check"], BOOTSTRAP, broker)[0] == 0


def test_ensure_exits_1_on_drift_it_cannot_fix() -> None:
    broker = MemoryBroker(topics={"herald.deploy-events.v1": Observed(1, 1, {})})
    code, out, _ = _run(["ensure"], BOOTSTRAP, broker)
    assert code == 1
    assert any(
        line.startswith("herald.deploy-events.v1 (HERALD_DOMAIN_TOPIC): ")
        and "drift not fixed" in line
        for line in out
    )


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        pytest.param(["ensure"], {}, "HERALD_KAFKA_BOOTSTRAP", id="no-bootstrap"),
        pytest.param(
            ["check"],
            {**BOOTSTRAP, "HERALD_TOPIC_REPLICATION_FACTOR": "0"},
            "HERALD_TOPIC_REPLICATION_FACTOR",
            id="bad-replication",
        ),
        pytest.param(["strimzi"], {}, "--cluster", id="strimzi-without-cluster"),
    ],
)
def test_the_command_exits_2_on_a_bad_setting_naming_it(
    argv: list[str], env: dict[str, str], named: str
) -> None:
    code, _, err = _run(argv, env, MemoryBroker())
    assert code == 2
    assert named in err[0]


# -- strimzi --------------------------------------------------------------------------------------


def test_strimzi_resources_carry_the_cluster_label_and_the_plan() -> None:
    settings = TopicSettings.from_env(
        {"HERALD_TOPIC_REPLICATION_FACTOR": "3", "HERALD_DEAD_LETTER_TOPIC": "Dead_Letters"}
    )
    documents = list(
        yaml.safe_load_all(
            strimzi.render(herald_topics(settings), cluster="main", namespace="kafka")
        )
    )
    assert len(documents) == 4
    for document, spec in zip(documents, herald_topics(settings), strict=True):
        assert document["apiVersion"] == "kafka.strimzi.io/v1beta2"
        assert document["kind"] == "KafkaTopic"
        assert document["metadata"]["labels"]["strimzi.io/cluster"] == "main"
        assert document["metadata"]["namespace"] == "kafka"
        assert document["spec"]["topicName"] == spec.name
        assert (document["spec"]["partitions"], document["spec"]["replicas"]) == (
            spec.partitions,
            3,
        )
        assert {k: str(v) for k, v in document["spec"]["config"].items()} == {
            k: w.value for k, w in spec.config.items()
        }
    assert documents[2]["metadata"]["name"] == "dead-letters"


def test_strimzi_leaves_replicas_to_the_broker_when_none_is_set() -> None:
    [raw, *_] = yaml.safe_load_all(strimzi.render(herald_topics(TopicSettings()), cluster="c"))
    assert "replicas" not in raw["spec"]
    assert "namespace" not in raw["metadata"]


def test_a_topic_created_meanwhile_by_someone_else_and_not_yet_reported_is_not_ok() -> None:
    class LateBroker(MemoryBroker):
        def create(self, spec: TopicSpec) -> bool:
            return False  # it exists already, yet the metadata does not show it

    settings = TopicSettings.from_env({})
    outcomes = ensure(LateBroker(), herald_topics(settings))
    assert not any(o.ok for o in outcomes)
    assert "run again" in outcomes[0].describe()


def test_every_bad_topic_setting_is_reported_at_once() -> None:
    with pytest.raises(TopicSettingsError) as raised:
        TopicSettings.from_env(
            {"HERALD_RAW_TOPIC": "no spaces", "HERALD_DOMAIN_RETENTION_MS": "5", "X": "y"}
        )
    assert [p.split(":")[0].split(" ")[0] for p in raised.value.problems] == [
        "HERALD_RAW_TOPIC",
        "HERALD_DOMAIN_RETENTION_MS",
    ]


def test_ensure_with_unfixable_warn_says_the_drift_and_exits_0_for_a_deployment_hook() -> None:
    broker = MemoryBroker(topics={"herald.deploy-events.v1": Observed(1, 1, {})})
    code, out, err = _run(["ensure", "--unfixable", "warn"], BOOTSTRAP, broker)
    assert code == 0
    assert any("drift not fixed" in line and "partition" in line for line in out)
    assert any("--unfixable warn" in line for line in err)
    assert _run(["check"], BOOTSTRAP, broker)[0] == 1  # still drift: check says so


@dataclass
class _Unanswered(MemoryBroker):
    asked: int = 0

    def observe(self, names: Sequence[str]) -> dict[str, Observed]:
        self.asked += 1
        raise BrokerUnavailableError("Kafka at 127.0.0.1:9 does not answer")


def test_a_short_wait_bounds_each_request_and_gives_up_after_it() -> None:
    broker = _Unanswered()
    timeouts: list[float] = []

    def factory(bootstrap: str, *, timeout_s: float) -> MemoryBroker:
        timeouts.append(timeout_s)
        return broker

    code = run(["check", "--wait-s", "1"], BOOTSTRAP, broker=factory, out=print, err=print)
    assert code == 3
    assert timeouts == [1.0]  # not the 15 s of one request: the whole wait is about 1 s
    # Asked again only while a pause (jittered, from 0.5 s) still ends within the second.
    assert 1 <= broker.asked <= 2


def test_a_misspelt_setting_is_warned_about_with_the_name_meant() -> None:
    code, _, err = _run(["check"], {**BOOTSTRAP, "HERALD_TOPC_PARTITIONS": "3"}, MemoryBroker())
    assert code == 1  # the topics are missing; the misspelt name changed nothing
    assert any(
        "HERALD_TOPC_PARTITIONS" in line and "HERALD_TOPIC_PARTITIONS" in line for line in err
    )

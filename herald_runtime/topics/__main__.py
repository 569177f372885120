"""python -m herald_runtime.topics {ensure,check,strimzi}: Herald's Kafka topics.

    ensure    create the missing topics; set the managed configs that drift (incremental alter
              configs); report partitions or replicas below the wanted ones (not changed).
              Idempotent. Exit 0 when every topic is as wanted, 1 when drift is left.
    check     change nothing; print each topic's state. Exit 1 if one is missing or drifts.
    strimzi   print the topics as Strimzi KafkaTopic resources (--cluster NAME [--namespace NS]).

Settings come from the environment, with the names the services read (docs/topics.md):
HERALD_KAFKA_BOOTSTRAP (ensure, check), HERALD_RAW_TOPIC, HERALD_DOMAIN_TOPIC,
HERALD_DEAD_LETTER_TOPIC, HERALD_CHECKPOINT_TOPIC, HERALD_TOPIC_PARTITIONS,
HERALD_TOPIC_REPLICATION_FACTOR, HERALD_TOPIC_MIN_INSYNC_REPLICAS, HERALD_RAW_RETENTION_MS,
HERALD_DOMAIN_RETENTION_MS, HERALD_DEAD_LETTER_RETENTION_MS, HERALD_KAFKA_MESSAGE_MAX_BYTES, and
(with --processor-topics) HERALD_PROCESSOR_APP_ID and HERALD_PROCESSOR_REPLICATION_FACTOR.

Exit status: 0 as wanted; 1 missing or drifting (check), drift left (ensure); 2 a bad setting
(named); 3 Kafka did not answer within --wait-s, or refused (a grant, a policy).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from herald_runtime import setting_names
from herald_runtime.backoff import Backoff
from herald_runtime.settings import describe_unknown, report, unknown_names
from herald_runtime.topics import strimzi
from herald_runtime.topics.ensuring import (
    Broker,
    BrokerUnavailableError,
    TopicsError,
    check,
    ensure,
)
from herald_runtime.topics.plan import (
    TopicSettings,
    TopicSettingsError,
    TopicSpec,
    herald_topics,
    processor_topics,
)

OK, DRIFT, BAD_SETTING, KAFKA_FAILED = 0, 1, 2, 3

T = TypeVar("T")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m herald_runtime.topics",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["ensure", "check", "strimzi"])
    parser.add_argument(
        "--processor-topics",
        action="store_true",
        help="also the processor's Faust internal topics (changelogs, assignor), for brokers"
        " where the processor may not create topics",
    )
    parser.add_argument("--cluster", help="strimzi: the Kafka cluster (strimzi.io/cluster label)")
    parser.add_argument("--namespace", help="strimzi: the namespace of the KafkaTopic resources")
    parser.add_argument(
        "--unfixable",
        choices=("fail", "warn"),
        default="fail",
        help="ensure: what drift it may not fix (fewer partitions or replicas than wanted) does:"
        " fail (exit 1, the default) or warn (said on stderr, exit 0: a deployment hook must not"
        " wait for a decision only a person can make)",
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=60.0,
        help="ensure, check: how long to wait for Kafka to answer (default 60)",
    )
    return parser


REQUEST_TIMEOUT_S = 15.0
"""The longest one request to Kafka may take."""


class BrokerFactory(Protocol):
    def __call__(self, bootstrap: str, *, timeout_s: float) -> Broker: ...


def run(
    argv: Sequence[str] | None,
    env: Mapping[str, str],
    *,
    broker: BrokerFactory,
    out: Callable[[str], None] = print,
    err: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
) -> int:
    """The command, with its effects passed in (`broker(bootstrap, timeout_s=)` makes the Kafka
    adapter)."""
    args = parser().parse_args(argv)
    unknown = unknown_names(env, known=setting_names.KNOWN, reads=setting_names.TOPICS_COMMAND)
    if unknown:
        err(f"topics: unknown settings, ignored: {describe_unknown(unknown)}")
    try:
        settings = TopicSettings.from_env(env)
    except TopicSettingsError as e:
        err(report("topics", e))
        return BAD_SETTING
    specs = list(herald_topics(settings))
    if args.processor_topics:
        specs += processor_topics(settings)
    if args.command == "strimzi":
        if not args.cluster:
            err("topics: strimzi needs --cluster NAME (the strimzi.io/cluster label)")
            return BAD_SETTING
        out(strimzi.render(specs, cluster=args.cluster, namespace=args.namespace).rstrip("\n"))
        return OK
    bootstrap = env.get("HERALD_KAFKA_BOOTSTRAP", "").strip()
    if not bootstrap:
        err("topics: bad setting: HERALD_KAFKA_BOOTSTRAP is required")
        return BAD_SETTING
    # One request may take at most what is left of the wait (and 15 s): `--wait-s 1` is about 1 s.
    kafka = broker(bootstrap, timeout_s=min(REQUEST_TIMEOUT_S, max(1.0, args.wait_s)))
    code = _against(args.command, kafka, specs, wait_s=args.wait_s, out=out, err=err)
    if code == DRIFT and args.command == "ensure" and args.unfixable == "warn":
        err(
            "topics: drift left that only a person should fix (see above); not failing (--unfixable warn)"
        )
        return OK
    return code


def _against(
    command: str,
    kafka: Broker,
    specs: Sequence[TopicSpec],
    *,
    wait_s: float,
    out: Callable[[str], None],
    err: Callable[[str], None],
) -> int:
    """`check` or `ensure` against the broker; the exit status."""
    try:
        if command == "check":
            judged = _patiently(lambda: check(kafka, specs), wait_s=wait_s, err=err)
            for judgement in judged:
                out(_line(judgement.spec, judgement.describe()))
            return OK if all(j.ok for j in judged) else DRIFT
        outcomes = _patiently(lambda: ensure(kafka, specs), wait_s=wait_s, err=err)
    except TopicsError as e:
        err(f"topics: {e}")
        return KAFKA_FAILED
    for outcome in outcomes:
        out(_line(outcome.found.spec, outcome.describe()))
    return OK if all(o.ok for o in outcomes) else DRIFT


def _line(spec: TopicSpec, state: str) -> str:
    return f"{spec.name} ({spec.setting}): {state}"


def _patiently(call: Callable[[], T], *, wait_s: float, err: Callable[[str], None]) -> T:
    """`call()`, again with backoff while Kafka does not answer, for at most about `wait_s`."""
    deadline = time.monotonic() + wait_s
    backoff = Backoff(base_s=1.0, cap_s=10.0)
    failures = 0
    while True:
        try:
            return call()
        except BrokerUnavailableError as e:
            failures += 1
            pause = backoff.delay(failures, rand=random.random())  # noqa: S311 - jitter
            if time.monotonic() + pause > deadline:
                raise
            err(f"topics: waiting for Kafka: {e}; asking again in {pause:.1f}s")
            time.sleep(pause)


def main() -> None:
    from herald_runtime.topics.kafka import KafkaBroker  # noqa: PLC0415 - only with a broker

    sys.exit(run(sys.argv[1:], os.environ, broker=KafkaBroker))


if __name__ == "__main__":
    main()

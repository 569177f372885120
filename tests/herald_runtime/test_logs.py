"""One log format for the three services: JSON or text with the same bound fields, a level, and
repeats held back (librdkafka's included) so that a Kafka outage does not flood."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer

from herald_dev import infra
from herald_runtime.logs import (
    LIBRDKAFKA_TEMPLATE,
    LogFormat,
    LogLevel,
    RepeatFilter,
    bound,
    configure,
    repeat_key,
)

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@pytest.fixture
def configured() -> Iterator[Callable[..., io.StringIO]]:
    """`configure` into a string, the root logger's handlers and level put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure_into(**options: object) -> io.StringIO:
        stream = io.StringIO()
        configure(stream=stream, **options)  # type: ignore[arg-type]
        return stream

    yield configure_into
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def _fail() -> None:
    raise RuntimeError("boom")


def test_json_is_one_object_per_line_with_the_bound_fields(
    configured: Callable[..., io.StringIO],
) -> None:
    stream = configured(log_format=LogFormat.JSON, level=LogLevel.INFO)
    log = logging.getLogger("tests.json")
    log.warning("watch of %s failed", "events", extra={"cluster": "prod eu", "partition": 3})
    try:
        _fail()
    except RuntimeError:
        bound(log, topic="t", subscription="s-1").exception("handler failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert RFC3339_UTC.fullmatch(first.pop("time"))
    assert first == {
        "level": "warning",
        "logger": "tests.json",
        "message": "watch of events failed",
        "cluster": "prod eu",
        "partition": 3,
    }
    assert (second["topic"], second["subscription"]) == ("t", "s-1")
    assert second["exception"].startswith("Traceback")
    assert "RuntimeError: boom" in second["exception"]


def test_text_carries_the_same_bound_fields_as_key_value(
    configured: Callable[..., io.StringIO],
) -> None:
    stream = configured(log_format=LogFormat.TEXT, level=LogLevel.INFO)
    logging.getLogger("tests.text").warning(
        "watch failed", extra={"cluster": "prod eu", "namespace": "apps"}
    )
    (line,) = stream.getvalue().splitlines()
    stamp, rest = line.split(" ", 1)
    assert RFC3339_UTC.fullmatch(stamp)
    assert rest == 'warning tests.text watch failed cluster="prod eu" namespace=apps'


def test_in_text_every_record_starts_at_the_margin_and_its_further_lines_are_indented(
    configured: Callable[..., io.StringIO],
) -> None:
    stream = configured(log_format=LogFormat.TEXT, level=LogLevel.INFO)
    log = logging.getLogger("tests.text")
    log.info("Recovery:\n+ table +\n| a   |")  # as Faust's recovery tables
    try:
        _fail()
    except RuntimeError:
        log.exception("failed")
    lines = stream.getvalue().splitlines()
    starts = [line for line in lines if not line.startswith(" ")]
    assert [RFC3339_UTC.match(line) is not None for line in starts] == [True, True]
    assert "    + table +" in lines
    assert any(line.startswith("    ") and "RuntimeError: boom" in line for line in lines)


@pytest.mark.parametrize(
    ("level", "written"),
    [
        pytest.param(LogLevel.DEBUG, ["d", "i", "w", "e"], id="debug"),
        pytest.param(LogLevel.INFO, ["i", "w", "e"], id="info"),
        pytest.param(LogLevel.WARNING, ["w", "e"], id="warning"),
        pytest.param(LogLevel.ERROR, ["e"], id="error"),
    ],
)
def test_the_level_setting_drops_what_is_below_it(
    configured: Callable[..., io.StringIO], level: LogLevel, written: list[str]
) -> None:
    stream = configured(log_format=LogFormat.JSON, level=level)
    log = logging.getLogger("tests.level")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == written


def test_python_warnings_are_logged_in_the_format(
    configured: Callable[..., io.StringIO],
) -> None:
    stream = configured(log_format=LogFormat.JSON, level=LogLevel.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    (entry,) = (json.loads(line) for line in stream.getvalue().splitlines())
    assert entry["logger"] == "py.warnings"
    assert "old API" in entry["message"]


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _record(
    msg: str, *args: object, name: str = "tests.repeat", **fields: object
) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": name, "msg": msg, "args": args, "levelno": logging.WARNING, "levelname": "WARNING"}
    )
    record.__dict__.update(fields)
    return record


def test_a_repeated_message_passes_once_per_interval_then_says_how_many_were_held_back() -> None:
    clock = _Clock()
    repeats = RepeatFilter(10, clock=clock)
    waiting = "waiting for Kafka: %s does not answer; trying again in %.1fs"
    passed = [repeats.filter(_record(waiting, "k:1", n / 10)) for n in range(100)]
    assert passed == [True] + [False] * 99
    clock.now += 9.9
    assert not repeats.filter(_record(waiting, "k:1", 30.0))
    clock.now += 0.2
    after = _record(waiting, "k:1", 30.0)
    assert repeats.filter(after)
    assert after.suppressed == 100  # type: ignore[attr-defined]
    assert after.getMessage() == (
        "waiting for Kafka: k:1 does not answer; trying again in 30.0s"
        " (100 similar messages suppressed in the 10s before)"
    )
    assert repeats.held_back() == []


def test_messages_differing_in_text_level_logger_or_bound_fields_are_not_held_back() -> None:
    repeats = RepeatFilter(10, clock=_Clock())
    assert repeats.filter(_record("watch failed: %s", 1, cluster="a"))
    assert repeats.filter(_record("watch failed: %s", 1, cluster="b"))
    assert repeats.filter(_record("watch failed: %s", 1, name="tests.other", cluster="a"))
    assert repeats.filter(_record("relisting %s", 1, cluster="a"))
    assert not repeats.filter(_record("watch failed: %s", 2, cluster="a"))
    # Per-item messages sharing a template are each said: what tells them apart is in the text.
    assert repeats.filter(_record("set aside Event %s: %s", "ns/a (uid-a)", "no reason"))
    assert repeats.filter(_record("set aside Event %s: %s", "ns/b (uid-b)", "no reason"))


def test_a_record_whose_arguments_do_not_fit_its_template_does_not_raise_at_the_caller() -> None:
    repeats = RepeatFilter(10, clock=_Clock())
    assert repeats.filter(_record("%d records", "many"))
    assert not repeats.filter(_record("%d records", "more"))


def _librdkafka(facility: str, text: str) -> logging.LogRecord:
    return _record(LIBRDKAFKA_TEMPLATE, facility, "rdkafka#consumer-1", text, name="x.librdkafka")


def test_librdkafka_messages_are_the_same_when_only_their_numbers_differ() -> None:
    refused = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused"
    assert repeat_key(_librdkafka("FAIL", f"{refused} (after 0ms in state CONNECT)")) == (
        repeat_key(_librdkafka("FAIL", f"{refused} (after 12ms in state CONNECT)"))
    )
    assert repeat_key(_librdkafka("FAIL", refused)) != repeat_key(_librdkafka("ERROR", refused))
    other_client = _librdkafka("FAIL", refused)
    other_client.args = ("FAIL", "rdkafka#producer-2", refused)
    assert repeat_key(other_client) == repeat_key(_librdkafka("FAIL", refused))
    assert repeat_key(_librdkafka("FAIL", refused)) != repeat_key(
        _librdkafka("FAIL", "Failed to resolve 'kafka:9092'")
    )


def test_messages_still_held_back_are_summed_up_when_logging_shuts_down(
    configured: Callable[..., io.StringIO],
) -> None:
    stream = configured(log_format=LogFormat.TEXT, level=LogLevel.INFO)
    log = logging.getLogger("tests.shutdown")
    for n in range(5):
        log.warning("Kafka away (try %d)", n)
    handler = logging.getLogger().handlers[0]
    handler.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("warning tests.shutdown Kafka away (try 0)")
    assert lines[1].endswith(
        "warning tests.shutdown 4 similar messages suppressed since: Kafka away (try 0) suppressed=4"
    )


def test_a_consumer_of_a_kafka_that_is_not_there_logs_a_bounded_number_of_lines(
    configured: Callable[..., io.StringIO],
) -> None:
    """Issue: a Kafka outage flooded the logs with librdkafka's lines (about 290 for a few seconds
    of a dispatcher); through `logging` and the repeat filter they are a handful, in the format."""
    stream = configured(log_format=LogFormat.JSON, level=LogLevel.INFO)
    logger = logging.getLogger("tests.librdkafka")
    seen: list[logging.LogRecord] = []
    logger.addFilter(lambda record: seen.append(record) is None)
    consumer = Consumer(
        {
            "bootstrap.servers": f"127.0.0.1:{infra.free_port()}",
            "group.id": "tests-closed-port",
            "reconnect.backoff.ms": 10,
            "reconnect.backoff.max.ms": 50,
            "logger": logger,
        }
    )
    try:
        consumer.subscribe(["nothing"])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            consumer.poll(0.2)
    finally:
        consumer.close()
    lines = stream.getvalue().splitlines()
    assert len(seen) >= 20  # what librdkafka said
    assert 1 <= len(lines) <= 4  # what was written
    entries = [json.loads(line) for line in lines]
    assert {e["logger"] for e in entries} == {"tests.librdkafka"}
    assert any("Connection refused" in e["message"] for e in entries)

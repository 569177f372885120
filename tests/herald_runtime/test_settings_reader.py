"""The settings reader every service uses: typed getters that name the variable, every problem
collected and raised at once, and unknown `HERALD_*` names found with a suggestion."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from herald_runtime import setting_names
from herald_runtime.logs import LogFormat
from herald_runtime.settings import (
    EnvReader,
    SettingsError,
    describe_unknown,
    report,
    unknown_names,
    warn_unknown_names,
)


@pytest.mark.parametrize(
    ("read", "env", "value"),
    [
        pytest.param(lambda r: r.text("X"), {}, None, id="text-unset"),
        pytest.param(lambda r: r.text("X", "d"), {"X": "  "}, "d", id="text-blank-is-unset"),
        pytest.param(lambda r: r.text("X"), {"X": " v "}, "v", id="text-stripped"),
        pytest.param(lambda r: r.number("X", 1.5), {}, 1.5, id="number-default"),
        pytest.param(lambda r: r.number("X", 1.5), {"X": "2.25"}, 2.25, id="number"),
        pytest.param(lambda r: r.integer("X", 3), {"X": "12"}, 12, id="integer"),
        pytest.param(lambda r: r.boolean("X", True), {"X": "FALSE"}, False, id="boolean-any-case"),
        pytest.param(
            lambda r: r.choice("X", LogFormat, LogFormat.JSON), {"X": "Text"}, "text", id="choice"
        ),
        pytest.param(lambda r: r.parsed("X", str.upper, "d"), {"X": "ab"}, "AB", id="parsed"),
    ],
)
def test_a_good_value_is_read_and_no_problem_recorded(
    read: Any, env: dict[str, str], value: object
) -> None:
    reader = EnvReader(env)
    assert read(reader) == value
    assert reader.problems == []
    reader.done()


def _refuse(value: str) -> str:
    raise ValueError(f"{value!r} is not acceptable")


@pytest.mark.parametrize(
    ("read", "raw", "problem"),
    [
        pytest.param(
            lambda r: r.number("X", 1), "soon", "X must be a number, not 'soon'", id="nan"
        ),
        pytest.param(
            lambda r: r.number("X", 1, minimum=2), "1", "X must be at least 2, not '1'", id="low"
        ),
        pytest.param(
            lambda r: r.number("X", 1, maximum=5), "-1", "X must be between 0 and 5", id="range"
        ),
        pytest.param(lambda r: r.number("X", 1), "nan", "X must be at least 0", id="not-a-number"),
        pytest.param(lambda r: r.integer("X", 1), "2.5", "X must be a whole number", id="fraction"),
        pytest.param(
            lambda r: r.integer("X", 1, maximum=65535), "70000", "X must be between", id="port"
        ),
        pytest.param(
            lambda r: r.boolean("X", True), "yes", "X must be true or false, not 'yes'", id="bool"
        ),
        pytest.param(
            lambda r: r.choice("X", LogFormat, LogFormat.JSON),
            "xml",
            "X must be one of json, text, not 'xml'",
            id="choice",
        ),
        pytest.param(
            lambda r: r.parsed("X", _refuse, "d"), "v", "X: 'v' is not acceptable", id="parsed"
        ),
        pytest.param(lambda r: r.required("X"), "", "X is required", id="required"),
    ],
)
def test_a_bad_value_is_a_problem_naming_the_variable_and_the_default_is_read(
    read: Any, raw: str, problem: str
) -> None:
    reader = EnvReader({"X": raw})
    value = read(reader)
    assert value in (1, True, LogFormat.JSON, "d", None)
    assert len(reader.problems) == 1
    assert reader.problems[0].startswith(problem)
    assert not reader.fine("X")
    with pytest.raises(SettingsError) as raised:
        reader.done()
    assert raised.value.problems == (reader.problems[0],)


def test_every_bad_setting_is_reported_in_one_error_in_the_order_read() -> None:
    class ServiceError(SettingsError):
        pass

    reader = EnvReader({"A": "many", "B": "maybe", "C": "3", "D": "4"}, error_type=ServiceError)
    reader.number("A", 1)
    reader.boolean("B", False)
    reader.number("C", 0)
    reader.number("D", 0)
    reader.problem("C must not exceed D... it does not; a check across settings", "C")
    with pytest.raises(ServiceError) as raised:
        reader.done()
    assert [p.split(" ")[0] for p in raised.value.problems] == ["A", "B", "C"]
    assert reader.fine("D")
    assert report("collector", raised.value).splitlines() == [
        "collector: 3 bad settings:",
        "  A must be a number, not 'many'",
        "  B must be true or false, not 'maybe'",
        "  C must not exceed D... it does not; a check across settings",
    ]


def test_one_bad_setting_is_reported_on_one_line() -> None:
    assert report("processor", SettingsError("X is required")) == (
        "processor: bad setting: X is required"
    )


def test_unknown_herald_names_are_found_with_the_closest_known_name() -> None:
    env = {
        "HERALD_LOG_LEVLE": "debug",  # a typo of a shared name
        "HERALD_LIST_PAGESIZE": "10",  # a typo of one of the collector's
        "HERALD_FROBNICATE": "1",  # close to nothing
        "HERALD_DATABASE_URL": "postgresql://x",  # the dispatcher's: known, not warned about
        "HERALD_LOG_LEVEL": "info",
        "PATH": "/bin",
    }
    unknown = unknown_names(env, known=setting_names.KNOWN, reads=setting_names.COLLECTOR)
    assert unknown == {
        "HERALD_FROBNICATE": None,
        "HERALD_LIST_PAGESIZE": "HERALD_LIST_PAGE_SIZE",
        "HERALD_LOG_LEVLE": "HERALD_LOG_LEVEL",
    }
    assert describe_unknown(unknown) == (
        "HERALD_FROBNICATE, HERALD_LIST_PAGESIZE (did you mean HERALD_LIST_PAGE_SIZE?),"
        " HERALD_LOG_LEVLE (did you mean HERALD_LOG_LEVEL?)"
    )


def test_the_unknown_names_are_warned_about_in_one_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("tests.unknown")
    with caplog.at_level(logging.WARNING, logger="tests.unknown"):
        warn_unknown_names({"HERALD_RAW_TOPC": "x"}, reads=setting_names.PROCESSOR, log=log)
        warn_unknown_names({"HERALD_RAW_TOPIC": "x"}, reads=setting_names.PROCESSOR, log=log)
    assert [r.getMessage() for r in caplog.records] == [
        "unknown settings, ignored: HERALD_RAW_TOPC (did you mean HERALD_RAW_TOPIC?)"
    ]
    assert caplog.records[0].unknown_settings == "HERALD_RAW_TOPC"

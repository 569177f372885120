"""Reading a service's settings from the environment: one reader, every bad setting reported at once.

What it solves: each service used to read its `HERALD_*` variables with helpers of its own, stopping
at the first bad value (fix one, restart, find the next), and ignoring a misspelt name. `EnvReader`
gives the typed getters every service uses (text, required text, number and whole number with
bounds, boolean, a choice from an `enum.StrEnum`, anything a parse function turns into a value), and
collects every problem instead of raising: a getter that meets a bad value records the problem,
naming the variable, and returns the default, so the rest is read too. `EnvReader.done()` then raises
one `SettingsError` listing them all. `unknown_names` finds the `HERALD_*` variables no Herald
service reads, each with the closest known name (difflib), for the warning each service logs at start.

What it does not: decide what a service's settings are (each service's `settings` module does, and
`herald_runtime.setting_names` lists every name), or connect to anything (a broker that does not
answer is waited for, never a bad setting).

Errors:
SettingsError   one or more bad settings: `problems`, one line each, each naming its variable
"""

from __future__ import annotations

import difflib
import enum
import logging
import math
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from herald_runtime import setting_names

T = TypeVar("T")
E = TypeVar("E", bound=enum.StrEnum)

PREFIX = "HERALD_"


class SettingsError(ValueError):
    """One or more bad settings; the service stops at start naming each.

    `problems` holds one line per bad setting, each naming its variable; `str()` joins them with
    "; ". A service's own error class may subclass this one (and its own hierarchy)."""

    def __init__(self, *problems: str) -> None:
        super().__init__(*problems)
        self.problems: tuple[str, ...] = problems

    def __str__(self) -> str:
        return "; ".join(self.problems)


KAFKA_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
"""Kafka's rule for topic names (`org.apache.kafka.common.internals.Topic.validate`): letters,
digits, '.', '_' and '-', at most 249 characters, and neither "." nor ".."."""


def kafka_topic(value: str) -> str:
    """`value` if it is a name Kafka takes for a topic; ValueError saying the rule otherwise (for
    `EnvReader.parsed`, which names the setting)."""
    if not KAFKA_TOPIC_NAME.fullmatch(value) or value in (".", ".."):
        raise ValueError(
            "must be a Kafka topic name (letters, digits, '.', '_', '-'; at most 249),"
            f" not {value!r}"
        )
    return value


def kafka_bootstrap(value: str) -> str:
    """`value` if it is `host:port[,host:port...]` (an optional `scheme://` each, as librdkafka
    allows); ValueError otherwise. Whether the brokers answer is not a setting: services wait."""
    for address in value.split(","):
        host, _, port = address.strip().rpartition("://")[2].rpartition(":")
        if not host or any(c.isspace() for c in host) or not port.isdecimal():
            raise ValueError(f"must be host:port[,host:port...], not {value!r}")
        if not 0 < int(port) < 65536:
            raise ValueError(f"has port {port} out of range in {value!r}")
    return value


def report(service: str, error: SettingsError) -> str:
    """The one message a service stops with: `collector: bad setting: X must be ...` for one
    problem; for several, a header line then one indented line per problem."""
    problems = error.problems or (str(error),)
    if len(problems) == 1:
        return f"{service}: bad setting: {problems[0]}"
    return f"{service}: {len(problems)} bad settings:\n" + "\n".join(f"  {p}" for p in problems)


@contextmanager
def stop_on_bad_settings(service: str) -> Iterator[None]:
    """Around a service's start: a `SettingsError` ends the process (status 1) with `report`'s
    message on stderr, and no traceback."""
    try:
        yield
    except SettingsError as e:
        raise SystemExit(report(service, e)) from None


def _bound(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"between {minimum:g} and {maximum:g}"
    if minimum is not None:
        return f"at least {minimum:g}"
    return f"at most {maximum:g}"


class EnvReader:
    """Typed getters over an environment mapping that collect problems instead of raising.

    A getter given a bad value records one problem naming the variable and returns its default
    (or None for `required`), so that reading goes on; `done()` raises them all as one
    `error_type`. Values are stripped; a variable set to an empty string counts as unset."""

    def __init__(
        self, env: Mapping[str, str], *, error_type: type[SettingsError] = SettingsError
    ) -> None:
        self._env = env
        self._error_type = error_type
        self.problems: list[str] = []
        self._bad: set[str] = set()

    def text(self, name: str, default: str | None = None) -> str | None:
        """The stripped value, or `default` when unset or empty."""
        return self._env.get(name, "").strip() or default

    def required(self, name: str, *, why: str = "") -> str | None:
        """The value; a problem ("NAME is required" + `why`) and None when unset or empty."""
        value = self.text(name)
        if value is None:
            self.problem(f"{name} is required{why}", name)
        return value

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = 0,
        maximum: float | None = None,
    ) -> float:
        """A decimal number within [minimum, maximum] (either bound None: open)."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problem(f"{name} must be a number, not {raw!r}", name)
            return default
        if (
            math.isnan(value)
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            self.problem(f"{name} must be {_bound(minimum, maximum)}, not {raw!r}", name)
            return default
        return value

    def integer(
        self,
        name: str,
        default: int,
        *,
        minimum: int | None = 0,
        maximum: int | None = None,
    ) -> int:
        """A whole number (decimal digits, optionally signed) within [minimum, maximum]."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw, 10)
        except ValueError:
            self.problem(f"{name} must be a whole number, not {raw!r}", name)
            return default
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.problem(f"{name} must be {_bound(minimum, maximum)}, not {raw!r}", name)
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """`true` or `false` (any case); anything else is a problem."""
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() not in ("true", "false"):
            self.problem(f"{name} must be true or false, not {raw!r}", name)
            return default
        return raw.lower() == "true"

    def choice(self, name: str, choices: type[E], default: E) -> E:
        """One of an enum's values (any case)."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return choices(raw.lower())
        except ValueError:
            allowed = ", ".join(c.value for c in choices)
            self.problem(f"{name} must be one of {allowed}, not {raw!r}", name)
            return default

    def parsed(self, name: str, parse: Callable[[str], T], default: T) -> T:
        """`parse(value)` when set; a `ValueError` it raises (a `SettingsError` is one) is recorded
        as the problem, prefixed with the name unless its message starts with it."""
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError as e:
            message = str(e)
            self.problem(message if message.startswith(name) else f"{name}: {message}", name)
            return default

    def problem(self, message: str, *names: str) -> None:
        """Record a problem (e.g. two settings that contradict each other), marking `names` bad."""
        self.problems.append(message)
        self._bad.update(names)

    def fine(self, *names: str) -> bool:
        """No problem was recorded for any of `names`: a check across them is worth making."""
        return not self._bad.intersection(names)

    def done(self) -> None:
        """Raise every recorded problem as one error; nothing if there was none."""
        if self.problems:
            self.fail()

    def fail(self) -> NoReturn:
        raise self._error_type(*self.problems)


def unknown_names(
    env: Mapping[str, str], *, known: Collection[str], reads: Collection[str] = ()
) -> dict[str, str | None]:
    """Each `HERALD_*` name in `env` that is not in `known`, with the closest known name (the names
    this service `reads` first, then the others), or None when nothing is close."""
    unknown = sorted(n for n in env if n.startswith(PREFIX) and n not in known)
    return {name: _closest(name, reads) or _closest(name, known) for name in unknown}


def _closest(name: str, names: Collection[str]) -> str | None:
    found = difflib.get_close_matches(name, sorted(names), n=1, cutoff=0.8)
    return found[0] if found else None


def describe_unknown(unknown: Mapping[str, str | None]) -> str:
    """One line for the start-up warning: `HERALD_LOG_LEVL (did you mean HERALD_LOG_LEVEL?),
    HERALD_FOO`."""
    return ", ".join(
        name + (f" (did you mean {close}?)" if close else "") for name, close in unknown.items()
    )


def warn_unknown_names(
    env: Mapping[str, str], *, reads: Collection[str], log: logging.Logger
) -> dict[str, str | None]:
    """At start, once logging is configured: warn, in one record, about the `HERALD_*` names in
    `env` that no Herald service reads (`setting_names.KNOWN`), each with a "did you mean". A name
    another service reads is not warned about (see `setting_names`). Returns what was warned about."""
    unknown = unknown_names(env, known=setting_names.KNOWN, reads=reads)
    if unknown:
        log.warning(
            "unknown settings, ignored: %s",
            describe_unknown(unknown),
            extra={"unknown_settings": ",".join(unknown)},
        )
    return unknown

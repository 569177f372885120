"""One log format for the three services, their libraries' logs included, with repeats held back.

What it solves: the collectors wrote JSON or text (text dropped the cluster), the dispatchers plain
text whatever `HERALD_LOG_FORMAT` said, the processors Faust's own format; librdkafka wrote straight
to stderr in its own (about 290 lines for a few seconds of Kafka away). `configure` installs one
handler on the root logger, for Herald's loggers and every library's (Faust, mode, aiokafka, and
librdkafka's once a client is given `"logger": <a logging.Logger>` in its config):

- `json`: one object per line: `time` (RFC 3339, UTC, milliseconds), `level`, `logger`, `message`,
  then the fields bound to the record (`extra=` or `bound`: `cluster`, `topic`, `partition`,
  `subscription`...), then `exception` (the traceback) when there is one;
- `text`: `time level logger message key=value ...`, the same fields, the traceback on the lines
  after.

`RepeatFilter` lets the same message through at most once per interval (`REPEAT_INTERVAL_S`): the
same logger, level and bound fields, and the same text once its numbers are blanked ("Connect to
127.0.0.1:1 failed (after 0ms)" and "(after 12ms)" are one message, as are "trying again in 0.4s" and
"in 3.1s"). The next one through after the interval says how many were held back (`suppressed`);
those still held back when logging shuts down are summed up then. Why the text and not the template
(`record.msg`): librdkafka logs every message with one template (`"%s [%s] %s"`: facility, client,
text), and Herald's per-item messages share theirs (`set aside Event %s: %s`): keyed on the template,
the second bad Event of an interval would go unsaid.

What it does not: decide what to log (the services do), or configure anything at import time (each
composition root calls `configure` once its settings are read).
"""

from __future__ import annotations

import enum
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

REPEAT_INTERVAL_S = 10.0
"""The same message (`repeat_key`) is written at most once per this many seconds: a flood becomes a
line every 10 s, and a loop retrying with backoff still shows it is alive."""

LIBRDKAFKA_TEMPLATE = "%s [%s] %s"
"""The template confluent-kafka logs every librdkafka message with: facility, client name, text."""


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


class LogLevel(enum.StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def number(self) -> int:
        """The `logging` module's level number."""
        return int(logging.getLevelName(self.value.upper()))


_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_DIGITS = re.compile(r"\d+")


def bound_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields bound to a record (`extra=`), in the order they were bound; names starting with
    `_` are private to the logging machinery and left out."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _time(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values JSON cannot hold are written as their `str`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(bound_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


_PLAIN = re.compile(r"[^\s=\"']+")


def _text_value(value: Any) -> str:
    text = str(value)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


class TextFormatter(logging.Formatter):
    """`time level logger message key=value...`: the JSON entry's fields, for a terminal. A value
    with spaces, quotes or `=` is quoted (JSON string rules). A record that spans lines (a message
    with line breaks, such as Faust's recovery tables; a traceback) continues on lines indented by
    four spaces: every record starts at the left margin with its time, and a line that starts with
    a space belongs to the record above."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_time(record)} {record.levelname.lower()} {record.name} {record.getMessage()}"
        fields = " ".join(f"{k}={_text_value(v)}" for k, v in bound_fields(record).items())
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        if record.stack_info:
            line = f"{line}\n{self.formatStack(record.stack_info)}"
        return line.replace("\n", "\n" + _CONTINUATION)


_CONTINUATION = "    "


def _message(record: logging.LogRecord) -> str:
    """The record's message; a template its arguments do not fit is left to the formatter (which
    reports it through `Handler.handleError`) instead of raising at the caller of `log.info`."""
    try:
        return record.getMessage()
    except (TypeError, ValueError, KeyError):
        return str(record.msg)


def repeat_key(record: logging.LogRecord) -> tuple[Any, ...]:
    """What makes two records "the same message" for `RepeatFilter`: logger, level, bound fields,
    and the text with its numbers blanked (for librdkafka's records, the client name left out:
    every client of a process says the same)."""
    args = record.args
    if record.msg == LIBRDKAFKA_TEMPLATE and isinstance(args, tuple) and len(args) == 3:
        text = f"{args[0]} {args[2]}"
    else:
        text = _message(record)
    fields = tuple((k, str(v)) for k, v in bound_fields(record).items())
    return (record.name, record.levelno, _DIGITS.sub("#", text), fields)


@dataclass
class _Window:
    started: float
    held_back: int
    record: logging.LogRecord


class RepeatFilter(logging.Filter):
    """Lets the same message (`repeat_key`) through at most once per `interval_s`.

    The first one through after an interval in which others were held back carries
    `suppressed=N` and says so in its message; `held_back()` gives a summary record for each
    message still held back (the handler writes them when logging shuts down). Thread-safe:
    librdkafka's records arrive on the threads that poll its clients."""

    MAX_KEYS = 10_000
    """Windows kept; past it, the ones whose interval is over are forgotten."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._interval_s = interval_s
        self._clock = clock
        self._windows: dict[tuple[Any, ...], _Window] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = repeat_key(record)
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is not None and now - window.started < self._interval_s:
                window.held_back += 1
                return False
            if len(self._windows) >= self.MAX_KEYS:
                self._forget_before(now - self._interval_s)
            self._windows[key] = _Window(started=now, held_back=0, record=record)
        if window is not None and window.held_back:
            record.msg = (
                f"{_message(record)} ({window.held_back} similar messages suppressed"
                f" in the {now - window.started:.0f}s before)"
            )
            record.args = None
            record.suppressed = window.held_back
        return True

    def _forget_before(self, moment: float) -> None:
        for key in [k for k, w in self._windows.items() if w.started < moment]:
            del self._windows[key]

    def held_back(self) -> list[logging.LogRecord]:
        """A summary record for each message with some held back since it was last let through
        (and resets their counts)."""
        summaries = []
        with self._lock:
            for window in self._windows.values():
                if window.held_back:
                    first = window.record
                    summary = logging.makeLogRecord(
                        {
                            "name": first.name,
                            "levelno": first.levelno,
                            "levelname": first.levelname,
                            "msg": "%d similar messages suppressed since: %s",
                            "args": (window.held_back, first.getMessage()),
                            "suppressed": window.held_back,
                        }
                    )
                    summaries.append(summary)
                    window.held_back = 0
        return summaries


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that, when closed (at exit, by `logging.shutdown`), writes the summaries
    of the messages its `RepeatFilter` still holds back."""

    def __init__(self, stream: TextIO, repeats: RepeatFilter | None) -> None:
        super().__init__(stream)
        self.repeats = repeats
        if repeats is not None:
            self.addFilter(repeats)

    def close(self) -> None:
        if self.repeats is not None:
            for summary in self.repeats.held_back():
                self.emit(summary)
            self.flush()
        super().close()


def configure(
    *,
    log_format: LogFormat,
    level: LogLevel,
    stream: TextIO | None = None,
    repeat_interval_s: float = REPEAT_INTERVAL_S,
) -> logging.Handler:
    """Route every logger's records to one handler on `stream` (stderr by default) in
    `log_format`, at `level` and above, repeats held back for `repeat_interval_s` (0: never).
    Replaces any handler configured before; Python warnings are logged too. Returns the handler."""
    repeats = RepeatFilter(repeat_interval_s) if repeat_interval_s > 0 else None
    handler = _Handler(stream or sys.stderr, repeats)
    handler.setFormatter(JsonFormatter() if log_format is LogFormat.JSON else TextFormatter())
    logging.basicConfig(level=level.number, handlers=[handler], force=True)
    logging.captureWarnings(True)
    return handler


class BoundLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger whose records carry `fields` (merged under any `extra=` given per call)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def bound(logger: logging.Logger, **fields: Any) -> BoundLogger:
    """`logger` with `fields` bound to every record it writes, e.g.
    `bound(log, topic=t, partition=p).warning("...")`."""
    return BoundLogger(logger, fields)

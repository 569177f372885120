"""`python -m collectors replay FILE [--cluster NAME]`: publish recorded Events as the watcher would.

Each line of the file is a core/v1 Event object as a watch delivers it, optionally with top-level
`_cluster` and `_watch_type` fields (they override `--cluster` and ADDED, and are not part of the
object). Every line becomes the same record, with the same key, through the same filter (the named
cluster's, from the cluster file, if there is one), the same check that it is a core/v1 Event
(`collectors.events`) and the same shortening of a message too long for Kafka (`collectors.records`)
as live collection would produce. This is how users test rules offline and how bugs get reproduced.
A line that cannot be published (not JSON, not an Event, too large for Kafka even shortened, not
delivered) is reported by its number with the reason, and the rest are published; the exit code
says whether any were.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from collectors.config import valid_cluster_name
from collectors.errors import PublishError
from collectors.events import event_problem
from collectors.filters import ADMIT_ALL, EventFilter, admits
from collectors.records import bound_message, to_raw_record
from collectors.watching import RecordSink
from herald_contracts import WatchType

_WATCH_TYPES = frozenset(t.value for t in WatchType)


@dataclass
class ReplayReport:
    published: int = 0
    filtered: int = 0
    failed: int = 0
    shortened: list[str] = field(default_factory=list)
    """Lines published with their message shortened, with the original size."""
    errors: list[str] = field(default_factory=list)
    """Lines not published, `<source>:<line>: <reason>`."""


def replay(
    lines: Iterable[str],
    *,
    cluster: str | None,
    filters: Mapping[str, EventFilter],
    sink: RecordSink,
    now: Callable[[], str],
    source: str = "<input>",
    message_max_bytes: int = 65_536,
) -> ReplayReport:
    report = ReplayReport()
    lock = threading.Lock()
    stop = threading.Event()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            event = json.loads(line)
        except ValueError as e:  # not JSON (a lone surrogate escape is JSON: checked when sent)
            report.errors.append(f"{where}: not JSON: {e}")
            continue
        if not isinstance(event, dict):
            report.errors.append(f"{where}: not a JSON object")
            continue
        name = event.pop("_cluster", None) or cluster
        watch_type = event.pop("_watch_type", WatchType.ADDED.value)
        if not isinstance(name, str) or not valid_cluster_name(name):
            report.errors.append(
                f"{where}: no valid cluster (give --cluster or a '_cluster' field)"
            )
            continue
        if not isinstance(watch_type, str) or watch_type not in _WATCH_TYPES:
            report.errors.append(
                f"{where}: '_watch_type' must be ADDED, MODIFIED or DELETED, not {watch_type!r}"
            )
            continue
        problem = event_problem(event)
        if problem is not None:
            report.errors.append(f"{where}: not a core/v1 Event: {problem}")
            continue
        if not admits(filters.get(name, ADMIT_ALL), event):
            report.filtered += 1
            continue
        bounded = bound_message(event, max_bytes=message_max_bytes)
        record = to_raw_record(
            cluster=name, watch_type=watch_type, event=bounded.event, collected_at=now()
        )

        def delivered(error: str | None, where: str = where) -> None:
            with lock:
                if error is None:
                    report.published += 1
                else:
                    report.failed += 1
                    report.errors.append(f"{where}: not delivered: {error}")

        try:
            sink.publish(record, on_delivery=delivered, stop=stop)
        except PublishError as e:  # refused for good (too large, not UTF-8), or refused now
            report.errors.append(f"{where}: not published: {e}")
            continue
        if bounded.shortened_from is not None:
            report.shortened.append(
                f"{where}: message shortened from {bounded.shortened_from} bytes "
                f"to {message_max_bytes}"
            )
    return report

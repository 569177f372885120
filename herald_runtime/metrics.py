"""Two habits every service's Prometheus metrics need, which prometheus_client leaves to the caller.

- `start_at_zero`: a labelled counter has no series until its first increment, so `increase()` and
  `rate()` never see that first one (Prometheus has no earlier sample to compare it with): the first
  dead letter, `gone` delivery or expired relist after a restart would never alert. Every label
  value known in advance is therefore given a 0 sample at start.
- `replace_series`: a gauge labelled by something that comes and goes (a Kafka partition assigned
  to this process, a key) keeps the series of a value that went, at its last value, until removed:
  after a rebalance a partition would be counted by two processes.

The services declare their metrics and say which label values they know; this module only applies
the two rules.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping

from prometheus_client import Counter, Gauge


def start_at_zero(counter: Counter, **values: Iterable[str]) -> None:
    """Create the series of every combination of the given label values, at 0 (an existing one
    keeps its value). Every label of the counter must be given."""
    names = list(values)
    for combination in itertools.product(*(tuple(values[name]) for name in names)):
        counter.labels(**dict(zip(names, combination, strict=True)))


def replace_series(gauge: Gauge, values: Mapping[str, float]) -> None:
    """Set a gauge of one label to `values`, and remove the series of label values not in it.
    Series are set before others are removed, so a scrape in between never sees the gauge empty."""
    for value, number in values.items():
        gauge.labels(value).set(number)
    for family in gauge.collect():
        for sample in family.samples:
            (value,) = sample.labels.values()
            if value not in values:
                gauge.remove(value)

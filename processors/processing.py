"""One raw record through the processor: decode, read the state, interpret, remember. Pure.

The agent in `processors.app` is a loop over `process`; the tests run the same function over an
in-memory state. The rule for what a stage cannot handle (issue 9) is decided here: a record that
does not decode, that the interpreter refuses (`Outcome.refused`), or on which the pure core fails
(a bug) is returned as a dead letter with the reason, and processing moves on to the next record.
Nothing here raises for a bad record, so nothing is retried in a loop and nothing behind it waits.
Failures of what is not pure (Kafka, the tables' changelogs) are not decided here: they are not
the record's fault, and the agent lets them restart the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from herald_contracts import ContractError, DomainEvent, decode_raw_record
from processors.catalogue import Catalogue
from processors.interpreting import Outcome, RolloutState, interpret
from processors.state import Keeper


@dataclass(frozen=True)
class Processed:
    events: tuple[DomainEvent, ...] = ()
    dead_letter: str | None = None
    """Why the record is set aside (dead-lettered), if it is."""
    failure: Exception | None = None
    """The exception, when the pure core failed on the record (a bug, logged with its traceback)."""
    outcome: str = "ignored"
    """interpreted, duplicate, suppressed, ignored or dead_lettered (the records metric's label)."""
    not_understood: str | None = None
    """The reason of a catalogued Event whose message no row understood (its event is flagged)."""


def process(
    value: bytes | None,
    *,
    state: Keeper,
    partition: int,
    offset: int,
    at: float,
    committed: int | None,
    catalogue: Catalogue | None = None,
) -> Processed:
    """The domain events of the raw record at `partition`/`offset` (record time `at`), or why it is
    dead-lettered; the state is read as it stood before `offset`, and updated. `catalogue`: the
    enabled rule packs (None: the built-in ones)."""
    try:
        record = decode_raw_record(value)
    except ContractError as e:
        return Processed(dead_letter=str(e), outcome="dead_lettered")
    try:
        outcome = interpret(record, last_n=None, catalogue=catalogue)
        rollout = RolloutState()
        if outcome.refused is None and outcome.occurrence is not None:
            # Only a record of the catalogue needs its state; most records are noise.
            last_n, rollout = state.before(
                outcome.occurrence, outcome.rollout_key, offset=offset, at=at
            )
            outcome = interpret(record, last_n=last_n, rollout=rollout, catalogue=catalogue)
    except Exception as e:  # noqa: BLE001 - a bug on one record must not stop every record behind it
        return Processed(
            dead_letter=f"the processor failed on this record: {e!r}",
            failure=e,
            outcome="dead_lettered",
        )
    if outcome.refused is not None:
        return Processed(dead_letter=outcome.refused, outcome="dead_lettered")
    state.remember(
        outcome,
        partition=partition,
        offset=offset,
        at=at,
        rollout_before=rollout,
        committed=committed,
    )
    return Processed(
        events=outcome.events, outcome=_label(outcome), not_understood=outcome.not_understood
    )


def _label(outcome: Outcome) -> str:
    if outcome.duplicate:
        return "duplicate"
    if outcome.events:
        return "interpreted"
    return "suppressed" if outcome.occurrence is not None else "ignored"

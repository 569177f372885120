"""The field cases of the catalogue (shared/cases, copied to tests/processors/cases): each file of
core/v1 Events as a watch delivers them, through `processors.processing.process` over one state, in
order, as the worker reads them; the expected values are those the cases' README states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from herald_contracts import DomainEvent, RawRecord, WatchType, encode_raw_record
from processors.processing import process
from processors.state import Keeper

CASES = Path(__file__).parent / "cases"
SHA = "4e1d9c2b7a6f5e4d3c2b1a09f8e7d6c5b4a39281"


def run_case(name: str) -> dict[int, list[DomainEvent]]:
    """The domain events of each line (1-based) of a case file."""
    state = Keeper({}, {}, retention_s=86_400)
    produced: dict[int, list[DomainEvent]] = {}
    lines = (CASES / name).read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        event: dict[str, Any] = json.loads(line)
        record = RawRecord(
            cluster="prod",
            watch_type=WatchType.ADDED,
            collected_at="2026-11-20T12:00:00Z",
            object=event,
        )
        processed = process(
            encode_raw_record(record),
            state=state,
            partition=0,
            offset=number,
            at=1_700_000_000.0 + number,
            committed=None,
        )
        assert processed.dead_letter is None, (number, processed.dead_letter)
        produced[number] = list(processed.events)
    return produced


def of_type(produced: dict[int, list[DomainEvent]], catalogue_name: str) -> dict[int, Any]:
    return {
        number: [e.data for e in events if e.catalogue_name == catalogue_name]
        for number, events in produced.items()
        if any(e.catalogue_name == catalogue_name for e in events)
    }


def test_argo_rollouts_progress_deadline_abort_is_one_event_and_a_later_abort_another() -> None:
    aborted = of_type(run_case("rollout-double-abort.jsonl"), "rollout.aborted")
    # shop/orders: lines 6-7 (bare notice, then the 1.8/1.9 formatted one) are one abort, reported
    # at the first notice with the rollout's revision; line 10 (count 2, after the retry's step on
    # line 9) is a new abort. shop/cart: lines 13-14 (the 1.10 formatted one) are one.
    assert sorted(aborted) == [6, 10, 13]
    [orders] = aborted[6]
    assert (orders["name"], orders["revision"]) == ("orders", 3)
    assert orders["detail"] == 'ReplicaSet "orders-5f7c8d9b64" has timed out progressing.'
    [again] = aborted[10]
    assert (again["name"], again["revision"], again["source_event_count"]) == ("orders", 3, 2)
    [cart] = aborted[13]
    assert (cart["name"], cart["revision"]) == ("cart", 8)


def test_argo_cd_3_2_and_3_3_bracketed_auto_sync_is_an_automated_operation_start() -> None:
    started = of_type(run_case("argocd-autosync-bracket.jsonl"), "application.operation_started")
    assert sorted(started) == [1, 5]
    [bracketed], [quoted] = started[1], started[5]
    assert (bracketed["initiator"], bracketed["revision"], bracketed["revisions"]) == (
        "automated",
        SHA,
        [SHA],
    )
    assert (quoted["initiator"], quoted["revision"]) == (
        "automated",
        "9a8b7c6d5e4f30211f2e3d4c5b6a79881726354a",
    )
    assert bracketed["source_message_understood"] is quoted["source_message_understood"] is True


def test_argo_cd_user_syncs_of_every_source_kind_and_rollbacks_are_operation_starts() -> None:
    started = of_type(run_case("argocd-user-sync-variants.jsonl"), "application.operation_started")
    assert sorted(started) == [1, 2, 3, 4]
    got = {
        n: (d["initiator"], d["user"], d["operation"], d["revision"], d["target_revision"])
        for n, [d] in started.items()
    }
    assert got == {
        1: ("user", "alice@example.com", "sync", SHA, "HEAD"),
        2: ("user", "alice@example.com", "sync", "0.7.2", "0.7.*"),
        3: ("user", "alice@example.com", "sync", SHA, SHA),
        4: ("user", "alice@example.com", "rollback", None, None),
    }
    assert started[4][0]["rollback_id"] == 12
    assert all(d["source_message_understood"] for [d] in started.values())

"""The subscriptions a running dispatcher holds because it cannot open their secrets: each told once
when it starts waiting and once when it opens again, held meanwhile, counted by key."""

from __future__ import annotations

import uuid

from dispatchers.sealing import Unopened
from dispatchers.unopened import UnopenedSubscriptions

A, B, C = (uuid.UUID(int=n) for n in (1, 2, 3))


def _missing(key_id: str, subscription: uuid.UUID) -> Unopened:
    return Unopened(key_id, key_held=False, reason=f"{subscription} is sealed with {key_id!r}")


def test_a_subscription_found_by_a_claim_is_told_once_and_held() -> None:
    unopened = UnopenedSubscriptions()
    assert unopened.held() == []
    assert unopened.found({A: _missing("k2", A)}) == {A: _missing("k2", A)}
    assert unopened.found({A: _missing("k2", A)}) == {}  # another worker, the same news
    assert unopened.found({}) == {}
    assert unopened.held() == [A]
    assert unopened.by_key() == {"k2": 1}


def test_a_scan_tells_the_new_ones_once_and_those_that_open_again_once() -> None:
    unopened = UnopenedSubscriptions()
    unopened.found({A: _missing("k2", A)})
    changes = unopened.rescanned({A: _missing("k2", A), B: _missing("k3", B)}, since=unopened.seen)
    assert changes.waiting == {B: _missing("k3", B)}  # A was told already
    assert changes.reopened == []
    assert sorted(unopened.held()) == [A, B]
    assert unopened.by_key() == {"k2": 1, "k3": 1}
    changes = unopened.rescanned({B: _missing("k3", B)}, since=unopened.seen)
    assert (changes.waiting, changes.reopened) == ({}, [A])  # resealed back, say
    assert unopened.held() == [B]
    assert unopened.by_key() == {"k3": 1}
    assert unopened.rescanned({}, since=unopened.seen).reopened == [B]
    assert unopened.by_key() == {}


def test_a_scan_read_before_a_claim_found_one_does_not_release_it() -> None:
    """The scan read the subscriptions before the reseal, a claim after it: the scan's older view
    neither releases the subscription nor tells it twice."""
    unopened = UnopenedSubscriptions()
    since = unopened.seen  # the scan starts reading
    unopened.found({A: _missing("k2", A)})
    changes = unopened.rescanned({}, since=since)
    assert (changes.waiting, changes.reopened) == ({}, [])
    assert unopened.held() == [A]
    # The next scan sees it too; one that does not is believed.
    assert unopened.rescanned({A: _missing("k2", A)}, since=unopened.seen).waiting == {}
    assert unopened.rescanned({}, since=unopened.seen).reopened == [A]


def test_the_readiness_detail_names_the_keys_waited_for() -> None:
    unopened = UnopenedSubscriptions()
    assert unopened.describe() == "ok"
    unopened.found({A: _missing("k2", A), B: _missing("k2", B)})
    unopened.found({C: Unopened("k1", key_held=True, reason="altered")})
    assert unopened.describe() == (
        "deliveries wait for 3 subscriptions whose secrets this dispatcher cannot open:"
        " 2 sealed with key 'k2' (not in HERALD_SECRETS_KEYS),"
        " 1 not opening with key 'k1' (altered or copied)"
    )

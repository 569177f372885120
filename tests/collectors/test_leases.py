"""The pure Lease decisions: which Leases a replica acquires, renews and releases."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from collectors.leases import (
    DEFAULT_GROUP as GROUP,
)
from collectors.leases import (
    STALE_DURATIONS,
    Action,
    Lease,
    LeaseKind,
    Plan,
    cluster_lease_name,
    is_free,
    member_lease_name,
    observe,
    own_member,
    plan,
    release_all,
    valid_group,
)

WALL = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DURATION = 15


def held(cluster: str, holder: str, *, version: str = "1") -> Lease:
    return Lease(
        name=cluster_lease_name(GROUP, cluster),
        kind=LeaseKind.CLUSTER,
        subject=cluster,
        holder=holder,
        duration_s=DURATION,
        acquire_time=WALL,
        renew_time=WALL,
        transitions=2,
        version=version,
    )


def member(holder: str, *, version: str = "1") -> Lease:
    return Lease(
        name=member_lease_name(GROUP, holder),
        kind=LeaseKind.MEMBER,
        subject=holder,
        holder=holder,
        duration_s=DURATION,
        version=version,
    )


def decide(
    me: str,
    clusters: set[str],
    leases: list[Lease],
    *,
    seen_at: float = 0.0,
    clock: float = 1.0,
    stopped: set[str] | None = None,
) -> Plan:
    by_name = {lease.name: lease for lease in leases}
    seen = observe({}, by_name, seen_at)
    return plan(
        me=me,
        clusters=frozenset(clusters),
        leases=by_name,
        seen=seen,
        clock=clock,
        wall=WALL,
        duration_s=DURATION,
        stopped=lambda c: c in (stopped or set()),
    )


def cluster_writes(decided: Plan, action: Action) -> set[str]:
    return {
        w.lease.subject
        for w in decided.writes
        if w.action is action and w.lease.kind is LeaseKind.CLUSTER
    }


def test_a_free_lease_is_created_and_acquired() -> None:
    decided = decide("a", {"prod"}, [])
    (write,) = [w for w in decided.writes if w.lease.kind is LeaseKind.CLUSTER]
    assert write.action is Action.ACQUIRE
    assert write.lease.version is None  # created
    assert (write.lease.holder, write.lease.duration_s, write.lease.transitions) == ("a", 15, 0)
    assert write.lease.acquire_time == write.lease.renew_time == WALL
    assert decided.keep == {"prod"}


def test_a_released_lease_is_taken_at_once_as_a_new_transition() -> None:
    released = replace(held("prod", ""), duration_s=1)
    decided = decide("a", {"prod"}, [released], seen_at=1.0, clock=1.0)
    (write,) = [w for w in decided.writes if w.lease.kind is LeaseKind.CLUSTER]
    assert write.action is Action.ACQUIRE
    assert (write.lease.holder, write.lease.transitions, write.lease.version) == ("a", 3, "1")


def test_a_held_lease_is_renewed_keeping_its_acquire_time_and_transitions() -> None:
    earlier = datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    mine = replace(held("prod", "a"), acquire_time=earlier, renew_time=earlier)
    decided = decide("a", {"prod"}, [mine])
    (write,) = [w for w in decided.writes if w.lease.kind is LeaseKind.CLUSTER]
    assert write.action is Action.RENEW
    assert (write.lease.acquire_time, write.lease.renew_time) == (earlier, WALL)
    assert (write.lease.transitions, write.lease.version) == (2, "1")


def test_a_live_lease_held_by_another_is_never_taken() -> None:
    decided = decide("a", {"prod"}, [held("prod", "b"), member("b")], seen_at=0, clock=14.9)
    assert not cluster_writes(decided, Action.ACQUIRE)
    assert decided.keep == frozenset()


def test_an_expired_lease_is_taken_over() -> None:
    dead = held("prod", "b")
    decided = decide("a", {"prod"}, [dead, member("b")], seen_at=0, clock=15.0)
    assert cluster_writes(decided, Action.ACQUIRE) == {"prod"}
    write = next(w for w in decided.writes if w.lease.subject == "prod")
    assert (write.lease.holder, write.lease.transitions, write.lease.version) == ("a", 3, "1")
    assert decided.members == 1  # b's membership expired with it


def test_expiry_counts_from_when_the_lease_was_seen_changing_not_its_renew_time() -> None:
    """A renewTime far in the past (another node's clock) does not make a live Lease expired: the
    time counted is this replica's own, since it first saw that resourceVersion."""
    stale_clock = replace(held("prod", "b"), renew_time=datetime(2020, 1, 1, tzinfo=UTC))
    leases = {stale_clock.name: stale_clock}
    seen = observe({}, leases, 100.0)
    assert not is_free(stale_clock, seen, 114.0)
    renewed = replace(stale_clock, version="2")
    seen = observe(seen, {renewed.name: renewed}, 110.0)
    assert not is_free(renewed, seen, 124.0)  # the change at 110 restarted the count
    assert is_free(renewed, seen, 125.0)


def test_a_lease_not_seen_before_counts_as_live() -> None:
    assert not is_free(held("prod", "b"), {}, 1_000_000.0)


def test_a_new_member_gets_its_share_from_a_replica_holding_everything() -> None:
    clusters = {f"c{i}" for i in range(5)}
    leases = [held(c, "a") for c in clusters] + [member("a"), member("b")]
    decided = decide("a", clusters, leases, clock=1.0)
    assert (decided.members, decided.share) == (2, 3)
    assert len(decided.keep) == 3
    assert len(decided.drop) == 2  # stopped first: renewed meanwhile, not released yet
    assert not cluster_writes(decided, Action.RELEASE)
    assert cluster_writes(decided, Action.RENEW) == clusters
    assert decided.keep.isdisjoint(decided.drop)

    after_stop = decide("a", clusters, leases, clock=2.0, stopped=set(decided.drop))
    assert cluster_writes(after_stop, Action.RELEASE) == decided.drop
    assert after_stop.drop == frozenset()
    released = [w.lease for w in after_stop.writes if w.action is Action.RELEASE]
    assert all(lease.holder == "" and lease.duration_s == 1 for lease in released)

    newcomer = decide(
        "b",
        clusters,
        [w.lease for w in after_stop.writes if w.lease.kind is LeaseKind.CLUSTER]
        + [member("a"), member("b")],
    )
    assert cluster_writes(newcomer, Action.ACQUIRE) == decided.drop


def test_a_replica_takes_no_more_than_its_share() -> None:
    clusters = {f"c{i}" for i in range(4)}
    decided = decide("b", clusters, [member("a"), member("b")])
    assert len(cluster_writes(decided, Action.ACQUIRE)) == 2


def test_replicas_racing_for_free_leases_reach_first_for_different_ones() -> None:
    clusters = {f"c{i}" for i in range(20)}
    both = [member("a"), member("b")]
    a = cluster_writes(decide("a", clusters, both), Action.ACQUIRE)
    b = cluster_writes(decide("b", clusters, both), Action.ACQUIRE)
    assert len(a) == len(b) == 10
    assert len(a & b) < 10  # rendezvous preference: not the same ten


def test_a_cluster_removed_from_the_file_is_released_once_stopped() -> None:
    leases = [held("prod", "a"), held("gone", "a"), member("a")]
    decided = decide("a", {"prod"}, leases)
    assert decided.drop == {"gone"}
    assert decided.keep == {"prod"}
    assert cluster_writes(decided, Action.RENEW) == {"prod", "gone"}
    stopped = decide("a", {"prod"}, leases, stopped={"gone"})
    assert cluster_writes(stopped, Action.RELEASE) == {"gone"}


def test_the_membership_lease_is_created_then_renewed() -> None:
    first = decide("a", set(), [])
    (write,) = first.writes
    assert (write.action, write.lease.name, write.lease.holder) == (
        Action.ACQUIRE,
        "herald-collector-member-a",
        "a",
    )
    (renewal,) = decide("a", set(), [member("a")]).writes
    assert renewal.action is Action.RENEW


def test_a_graceful_stop_releases_the_cluster_leases_of_this_replica_only() -> None:
    leases = {x.name: x for x in [held("p", "a"), held("q", "b"), member("a"), member("b")]}
    writes = release_all(me="a", leases=leases, wall=WALL)
    assert {w.lease.name for w in writes} == {cluster_lease_name(GROUP, "p")}
    assert all(w.action is Action.RELEASE and w.lease.holder == "" for w in writes)
    assert own_member(me="a", group=GROUP, leases=leases) == member("a")


def stale_after() -> float:
    return STALE_DURATIONS * DURATION


@pytest.mark.parametrize("released", [False, True], ids=["expired", "released"])
def test_another_replicas_membership_lease_unchanged_for_long_is_deleted(released: bool) -> None:
    gone = replace(member("b"), holder="" if released else "b")
    leases = [held("p", "a"), member("a"), gone]
    assert decide("a", {"p"}, leases, clock=stale_after() - 1).deletes == ()
    assert decide("a", {"p"}, leases, clock=stale_after()).deletes == (gone,)


def test_a_lease_of_a_cluster_gone_from_the_file_unchanged_for_long_is_deleted() -> None:
    gone, wanted = held("gone", ""), held("q", "b")
    leases = [gone, wanted, member("a")]
    assert decide("a", {"q"}, leases, clock=stale_after() - 1).deletes == ()
    assert decide("a", {"q"}, leases, clock=stale_after()).deletes == (gone,)


def test_a_replica_never_deletes_its_own_leases() -> None:
    leases = [held("p", "a"), held("gone", "a"), member("a")]
    assert decide("a", {"p"}, leases, clock=100 * stale_after()).deletes == ()


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        pytest.param("prod-eu", "herald-collector-prod-eu", id="already-a-dns-label"),
        pytest.param("Prod_EU", None, id="uppercase-and-underscore"),
        pytest.param("x" * 80, None, id="too-long"),
        pytest.param("prod.eu:1", None, id="dots-and-colons"),
    ],
)
def test_lease_names_are_dns_labels(cluster: str, expected: str | None) -> None:
    name = cluster_lease_name(GROUP, cluster)
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert name.startswith("herald-collector-")
    if expected is not None:
        assert name == expected


@pytest.mark.parametrize(
    ("group", "valid"),
    [
        ("herald-collector", True),
        ("prod-herald-collector", True),
        ("x" * 63, True),
        ("x" * 64, False),
        ("cluster", False),
        ("member", False),
        ("Herald", False),
        ("herald-", False),
        ("-herald", False),
        ("herald.collector", False),
        ("", False),
    ],
)
def test_a_group_is_a_short_dns_label(group: str, valid: bool) -> None:
    assert valid_group(group) is valid


def test_two_groups_never_share_a_lease_name() -> None:
    assert cluster_lease_name("a", "prod") != cluster_lease_name("b", "prod")
    assert member_lease_name("a", "pod-1") != member_lease_name("b", "pod-1")
    long = "x" * 60
    assert cluster_lease_name(long + "-a", "prod") != cluster_lease_name(long + "-b", "prod")
    assert len(cluster_lease_name(long + "-a", "prod")) <= 63


def test_clusters_whose_names_clean_up_alike_get_different_leases() -> None:
    assert cluster_lease_name(GROUP, "Prod") != cluster_lease_name(GROUP, "prod")
    assert cluster_lease_name(GROUP, "a" * 70 + "1") != cluster_lease_name(GROUP, "a" * 70 + "2")

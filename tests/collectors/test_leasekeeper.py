"""Replicas sharing clusters through the Lease keeper, on the in-memory Lease store and a fake clock:
each cluster is watched by one replica, a new replica gets its share, a dead or cut-off one's
clusters move, and no cluster is ever watched twice."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from collectors.errors import LeaseConflictError, LeaseError
from collectors.leasekeeper import LeaseKeeper, LeaseTimings
from collectors.leases import DEFAULT_GROUP as GROUP
from collectors.leases import Lease, LeaseKind, cluster_lease_name, member_lease_name
from collectors.leasestore import MemoryLeaseStore

TIMINGS = LeaseTimings(duration_s=15, renew_deadline_s=10, retry_period_s=2)
CLUSTERS = {f"c{i}" for i in range(5)}


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return datetime(2026, 11, 30, tzinfo=UTC) + timedelta(seconds=self.now)


@dataclass
class CutOff:
    """One replica's view of the shared store, which can be cut off from it alone."""

    store: MemoryLeaseStore
    down: bool = False

    def list(self) -> dict[str, Lease]:
        if self.down:
            raise LeaseError("list: API server unreachable")
        return self.store.list()

    def write(self, lease: Lease) -> Lease:
        if self.down:
            raise LeaseError("write: API server unreachable")
        return self.store.write(lease)

    def delete(self, lease: Lease) -> None:
        if self.down:
            raise LeaseError("delete: API server unreachable")
        self.store.delete(lease)


@dataclass
class Replica:
    """A keeper and what its main loop would run: the watches follow `owned` at once."""

    keeper: LeaseKeeper
    link: CutOff
    running: frozenset[str] = frozenset()
    alive: bool = True
    group: str = GROUP

    def tick(self) -> None:
        owned, view = self.keeper.owned()
        self.running = owned
        self.keeper.report(owned, view=view)


@dataclass
class World:
    store: MemoryLeaseStore = field(default_factory=MemoryLeaseStore)
    clock: Clock = field(default_factory=Clock)
    replicas: dict[str, Replica] = field(default_factory=dict)

    def start(
        self,
        name: str,
        clusters: set[str] = CLUSTERS,
        *,
        group: str = GROUP,
        link_type: type[CutOff] = CutOff,
    ) -> Replica:
        link = link_type(self.store.in_group(group))
        keeper = LeaseKeeper(
            link,
            holder=name,
            group=group,
            timings=TIMINGS,
            clock=self.clock,
            wall=self.clock.wall,
        )
        keeper.want(clusters)
        self.replicas[name] = Replica(keeper, link, group=group)
        return self.replicas[name]

    def run(self, seconds: float) -> None:
        """Beat every 2 s and tick every 0.5 s, checking at every tick that no cluster runs on
        two replicas."""
        end = self.clock.now + seconds
        while self.clock.now < end:
            if self.clock.now % TIMINGS.retry_period_s == 0:
                for replica in self.live():
                    replica.keeper.beat()
            for replica in self.live():
                replica.tick()
            self.assert_watched_at_most_once()
            self.clock.now += 0.5

    def live(self) -> list[Replica]:
        return [r for r in self.replicas.values() if r.alive]

    def assert_watched_at_most_once(self) -> None:
        """Within each group: another group's replicas watch the same clusters for themselves."""
        for group in {r.group for r in self.live()}:
            running = [c for r in self.live() if r.group == group for c in r.running]
            assert len(running) == len(set(running)), {
                n: r.running for n, r in self.replicas.items()
            }

    def watched(self) -> dict[str, set[str]]:
        return {n: set(r.running) for n, r in self.replicas.items() if r.alive}

    def holders(self) -> dict[str, str]:
        return {
            c: lease.holder
            for c in CLUSTERS
            if (lease := self.store.get(cluster_lease_name(GROUP, c))) is not None
        }


def everything_once(world: World) -> bool:
    running = [c for r in world.live() for c in r.running]
    return sorted(running) == sorted(CLUSTERS)


def test_one_replica_takes_every_cluster() -> None:
    world = World()
    world.start("a")
    world.run(2)
    assert world.watched() == {"a": CLUSTERS}
    assert set(world.holders().values()) == {"a"}


def test_a_new_replica_gets_its_share_without_any_cluster_watched_twice() -> None:
    world = World()
    world.start("a")
    world.run(4)
    world.start("b")
    world.run(10)
    watched = world.watched()
    assert everything_once(world)
    assert sorted(len(v) for v in watched.values()) == [2, 3]
    assert world.holders() == {c: n for n, clusters in watched.items() for c in clusters}


def test_a_dead_replicas_clusters_are_taken_over_once_its_leases_expire() -> None:
    world = World()
    world.start("a")
    world.run(4)
    world.start("b")
    world.run(10)
    world.replicas["b"].alive = False  # kill -9: nothing is released
    world.run(TIMINGS.duration_s - 4)
    assert len(world.watched()["a"]) < len(CLUSTERS)  # b's leases have not expired yet
    world.run(8)
    assert world.watched() == {"a": CLUSTERS}


def test_a_stopping_replica_releases_its_leases_and_the_others_take_them_at_once() -> None:
    world = World()
    world.start("a")
    world.run(4)
    b = world.start("b")
    world.run(10)
    b.alive = False
    b.running = frozenset()
    b.keeper.release()
    world.run(4)  # well within a lease duration
    assert world.watched() == {"a": CLUSTERS}


def test_a_replica_cut_off_from_the_leases_stops_its_watches_before_another_takes_them() -> None:
    world = World()
    world.start("a")
    world.run(4)
    b = world.start("b")
    world.run(10)
    theirs = set(b.running)
    assert theirs
    b.link.down = True
    # It goes on ticking (its watches would run), cut off from the Leases only: at every tick
    # `run` checks that a and b never watch one cluster together.
    world.run(TIMINGS.renew_deadline_s + 1)
    assert b.running == frozenset()
    assert not b.keeper.health()[0]
    world.run(10)
    assert world.watched()["a"] == CLUSTERS


def test_a_cluster_to_hand_over_is_not_released_while_its_watch_still_runs() -> None:
    world = World()
    a = world.start("a")
    world.run(4)
    stuck = sorted(CLUSTERS)[0]

    def slow_tick() -> None:  # the main loop has not stopped `stuck` yet
        owned, view = a.keeper.owned()
        a.running = owned | {stuck}
        a.keeper.report(a.running, view=view)

    a.tick = slow_tick  # type: ignore[method-assign]
    world.start("b")
    for _ in range(20):
        world.clock.now += 2
        for replica in world.live():
            replica.keeper.beat()
            replica.tick()
        assert world.holders()[stuck] == "a"  # renewed, never released under its watch


def test_a_cluster_removed_from_the_file_stops_and_its_lease_is_released() -> None:
    world = World()
    a = world.start("a")
    world.run(4)
    a.keeper.want(CLUSTERS - {"c0"})
    world.run(6)
    assert world.watched() == {"a": CLUSTERS - {"c0"}}
    assert world.holders()["c0"] == ""


def test_a_lease_written_by_someone_else_ends_the_watch_at_the_next_beat() -> None:
    world = World()
    a = world.start("a")
    world.run(4)
    name = cluster_lease_name(GROUP, "c1")
    taken = world.store.get(name)
    assert taken is not None
    world.store.write(replace(taken, holder="intruder"))
    world.run(2.5)
    assert "c1" not in a.running


@pytest.mark.parametrize("down_for_s", [1, 12], ids=["blip", "outage"])
def test_health_follows_whether_the_leases_can_be_renewed(down_for_s: float) -> None:
    world = World()
    a = world.start("a")
    world.run(4)
    assert a.keeper.health()[0]
    world.store.down = True
    world.run(down_for_s)
    assert a.keeper.health()[0] is (down_for_s < TIMINGS.renew_deadline_s)
    world.store.down = False
    world.run(4)
    assert a.keeper.health()[0]
    assert world.watched() == {"a": CLUSTERS}


def test_a_cluster_handed_over_again_waits_for_a_new_report_before_its_release() -> None:
    """A cluster to hand over, kept after all (a replica left meanwhile), then to hand over again:
    a report made in between (the cluster not started again yet: its checkpoints being read) must
    not release it under a watch about to start; only a report made after the second drop can."""
    world = World()
    a = world.start("a", {"x", "y"})
    world.run(4)

    def member(holder: str, *, live: bool) -> None:
        name = member_lease_name(GROUP, holder)
        lease = world.store.get(name) or Lease(
            name=name, kind=LeaseKind.MEMBER, subject=holder, duration_s=15
        )
        world.store.write(replace(lease, holder=holder if live else ""))

    def holder(cluster: str) -> str:
        lease = world.store.get(cluster_lease_name(GROUP, cluster))
        return "" if lease is None else lease.holder

    member("b", live=True)
    a.keeper.beat()  # share 1: one cluster to hand over, no report yet
    (dropped,) = {"x", "y"} - a.keeper.owned()[0]
    member("b", live=False)
    a.keeper.beat()  # share 2 again: kept after all
    owned, view = a.keeper.owned()
    assert dropped in owned
    a.keeper.report(owned - {dropped}, view=view)  # not started again yet
    member("b", live=True)
    a.keeper.beat()  # to hand over again
    assert holder(dropped) == "a"  # renewed, not released on the old report
    owned, view = a.keeper.owned()
    assert dropped not in owned
    a.keeper.report(owned, view=view)
    a.keeper.beat()
    assert holder(dropped) == ""


def test_two_groups_in_one_namespace_never_count_or_take_each_others_leases() -> None:
    """Two Deployments (two releases) with their Leases in one namespace, both watching the same
    clusters: each group shares them among its own replicas only, and each watches every one."""
    world = World()
    for name in ("a1", "a2"):
        world.start(name, group="prod-herald-collector")
    for name in ("b1", "b2"):
        world.start(name, group="test-herald-collector")
    world.run(20)
    for group in ("prod-herald-collector", "test-herald-collector"):
        replicas = {n: r for n, r in world.replicas.items() if r.group == group}
        running = sorted(c for r in replicas.values() for c in r.running)
        assert running == sorted(CLUSTERS), group
        assert all(r.keeper.health()[1]["members"] == 2 for r in replicas.values())


def test_a_graceful_stop_deletes_the_membership_lease() -> None:
    world = World()
    a = world.start("a")
    world.run(4)
    assert world.store.get(member_lease_name(GROUP, "a")) is not None
    a.alive = False
    a.keeper.release()
    assert world.store.get(member_lease_name(GROUP, "a")) is None
    assert set(world.holders().values()) == {""}


def test_leases_nobody_renews_any_more_are_deleted_after_ten_lease_durations() -> None:
    """A replica that died (its membership Lease left behind) and a cluster removed from the file
    while its holder was down: both Leases go once unchanged for 10 lease durations, not earlier."""
    world = World()
    world.start("a", CLUSTERS | {"old"})
    world.run(4)
    world.replicas["a"].alive = False  # killed: no release
    world.start("b")
    world.run(10 * TIMINGS.duration_s - 10)
    assert {member_lease_name(GROUP, "a"), cluster_lease_name(GROUP, "old")} <= world.store.names()
    world.run(20)
    names = world.store.names()
    assert member_lease_name(GROUP, "a") not in names
    assert cluster_lease_name(GROUP, "old") not in names
    assert names == {member_lease_name(GROUP, "b")} | {
        cluster_lease_name(GROUP, c) for c in CLUSTERS
    }


def test_a_stale_lease_renewed_meanwhile_is_not_deleted() -> None:
    store = MemoryLeaseStore()
    lease = store.write(Lease(name="x", kind=LeaseKind.MEMBER, subject="x", holder="x"))
    renewed = store.write(replace(lease, duration_s=15))
    with pytest.raises(LeaseConflictError):
        store.delete(lease)
    assert store.get("x") == renewed


def test_a_refused_clean_up_leaves_the_replica_healthy_and_its_clusters_watched() -> None:
    """Deleting stale Leases is housekeeping: a Role without `delete` (403) is logged and counted,
    never a reason to report the Leases machinery broken."""

    @dataclass
    class NoDelete(CutOff):
        def delete(self, lease: Lease) -> None:
            raise LeaseError("delete: 403 Forbidden", status=403)

    world = World()
    world.start("a")
    world.run(4)
    world.replicas["a"].alive = False  # killed: its membership Lease stays behind
    b = world.start("b", link_type=NoDelete)
    world.run(12 * TIMINGS.duration_s)
    assert member_lease_name(GROUP, "a") in world.store.names()  # not deleted: refused
    assert b.keeper.health()[0]
    assert world.watched() == {"b": CLUSTERS}

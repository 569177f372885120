"""Which cluster Leases a collector replica acquires, renews and releases: pure.

Collector replicas share the clusters of the cluster file through coordination.k8s.io/v1 Leases in
their home cluster, one per cluster (`<group>-<cluster>`), as Kubernetes controllers elect
a leader: the holder renews its Lease every retry period; a Lease that has not changed for its
`leaseDurationSeconds` has expired and may be taken over; every write names the resourceVersion it
read, so of two replicas reaching for one Lease only one wins (the other gets 409 Conflict).
Each replica also holds a membership Lease of its own (`<group>-member-<holder>`),
renewed on the same beat: the live replicas are the members whose Lease has not expired, and each
replica aims at its fair share, ceil(clusters / live replicas). One that holds more (a replica was
added: `kubectl scale`) stops the surplus clusters' watches, writes their checkpoints, and
releases their Leases (holder cleared, so the newcomer takes them at once); one that holds fewer
takes free and expired Leases, preferring the clusters that rendezvous hashing gives it, so that
replicas racing for free Leases mostly reach for different ones.

Expiry is judged as client-go's leaderelection judges it: by the time this replica *observed* a
Lease's resourceVersion change, not by the `renewTime` written in it, so clocks that disagree
between nodes cannot make a live Lease look expired. A replica that has just started therefore
waits a whole lease duration before taking over a Lease it finds held (a Lease released on a
graceful stop, with its holder cleared, is free at once).

The Lease group (`HERALD_LEASE_GROUP`, the chart's collector name) prefixes every Lease name and is
the value of the label the Leases are listed by: replicas of one group (one Deployment) share the
clusters among themselves, and never count, take or delete another group's Leases, even in the
same namespace.

Leases nobody renews any more are deleted, so that they do not pile up (pod names are unique, so
every rollout leaves membership Leases behind): a replica deletes its own membership Lease when it
stops gracefully, and deletes a membership Lease of another, or the Lease of a cluster no longer in
its cluster file, once it has seen it unchanged for STALE_DURATIONS lease durations, naming the
resourceVersion it saw (a renewal meanwhile wins: the delete is refused).

What this module does not do: talk to the API server (`collectors.leasestore`), keep time, or run
the beat and say which watches may run (`collectors.leasekeeper`).
"""

from __future__ import annotations

import enum
import hashlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

DEFAULT_GROUP = "herald-collector"
GROUP_LABEL = "herald.dev/collector-lease"
"""Label on every Lease a collector writes: its group; the adapter lists by `GROUP_LABEL=<group>`."""
KIND_LABEL = "herald.dev/collector-lease-kind"
"""Label on every Lease a collector writes: `cluster` or `member`."""
MAX_GROUP = 63
"""A group is a DNS-1123 label (and a label value): at most 63 characters; a Lease name it leaves
too little room in is shortened with a hash (`lease_name`)."""
LEGACY_KINDS = frozenset({"cluster", "member"})
"""Before groups, the label `herald.dev/collector-lease` held the kind, and the names were those of
the default group: replicas of the default group read such Leases as theirs (and relabel them when
they write them), so a release upgraded from then shares with its old pods and never finds its
Lease names taken by objects it does not list. No group may be named like a kind."""
STALE_DURATIONS = 10
"""A Lease of another replica (or of a cluster no longer in the file) seen unchanged for this many
lease durations is deleted."""
SUBJECT_ANNOTATION = "herald.dev/subject"
"""Annotation naming what the Lease is for, unabridged: the cluster's name, or the member's holder
identity (a Lease's name may have been shortened or lowercased)."""
RELEASED_DURATION_S = 1
"""`leaseDurationSeconds` of a released Lease, as client-go writes it."""

_MAX_NAME = 63
_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_GROUP = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def valid_group(group: str) -> bool:
    """A DNS-1123 label of at most MAX_GROUP characters (also a valid label value)."""
    return (
        len(group) <= MAX_GROUP
        and _GROUP.fullmatch(group) is not None
        and group not in LEGACY_KINDS
    )


class LeaseKind(enum.StrEnum):
    CLUSTER = "cluster"
    MEMBER = "member"


class Action(enum.StrEnum):
    ACQUIRE = "acquire"
    RENEW = "renew"
    RELEASE = "release"


@dataclass(frozen=True)
class Lease:
    """One coordination.k8s.io/v1 Lease, as much of it as the sharing reads and writes."""

    name: str
    kind: LeaseKind
    subject: str
    """The cluster's name, or the member's holder identity."""
    holder: str = ""
    """`spec.holderIdentity`; empty: nobody holds it (released), anyone may take it."""
    duration_s: int = 0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0
    version: str | None = None
    """`metadata.resourceVersion`; None: not created yet."""


@dataclass(frozen=True)
class Write:
    """A Lease to write: created when `lease.version` is None, else replaced at that version."""

    action: Action
    lease: Lease


@dataclass(frozen=True)
class Plan:
    writes: tuple[Write, ...]
    keep: frozenset[str]
    """Clusters whose Leases this replica holds (or takes now) and means to watch."""
    drop: frozenset[str]
    """Clusters whose Leases it holds and means to release once their watches have stopped (beyond
    its share, or gone from the cluster file): renewed meanwhile, never watched."""
    members: int
    share: int
    deletes: tuple[Lease, ...] = ()
    """Leases nobody has renewed for STALE_DURATIONS lease durations (other replicas' membership,
    clusters gone from the file): to delete at the version seen."""


Seen = Mapping[str, tuple[str | None, float]]
"""Per Lease name, the resourceVersion last seen and the local (monotonic) time it was first seen."""


def lease_name(prefix: str, subject: str) -> str:
    """`prefix + subject` as a DNS-1123 label (lowercase letters, digits and '-', at most 63).
    A name that does not fit as it is gets a short hash of itself appended, so that two subjects
    (or two groups) never share a name ("Prod" and "prod", or long names with a common beginning)."""
    plain = prefix + subject
    cleaned = _NOT_DNS.sub("-", plain.lower()).strip("-")
    if cleaned == plain and len(cleaned) <= _MAX_NAME:
        return cleaned
    digest = hashlib.sha256(plain.encode()).hexdigest()[:8]
    return f"{cleaned[: _MAX_NAME - len(digest) - 1].rstrip('-')}-{digest}"


def cluster_lease_name(group: str, cluster: str) -> str:
    return lease_name(f"{group}-", cluster)


def member_lease_name(group: str, holder: str) -> str:
    return lease_name(f"{group}-member-", holder)


def observe(
    seen: Seen, leases: Mapping[str, Lease], clock: float
) -> dict[str, tuple[str | None, float]]:
    """The observations after a list: a Lease whose resourceVersion changed is seen anew at `clock`."""
    observed: dict[str, tuple[str | None, float]] = {}
    for name, lease in leases.items():
        before = seen.get(name)
        unchanged = before is not None and before[0] == lease.version
        observed[name] = before if before is not None and unchanged else (lease.version, clock)
    return observed


def is_free(lease: Lease | None, seen: Seen, clock: float) -> bool:
    """Nobody holds it: absent, released, or unchanged for its whole duration since first seen."""
    if lease is None or not lease.holder:
        return True
    since = seen.get(lease.name)
    if since is None or since[0] != lease.version:
        return False  # not observed yet: counts as live until it has been watched a full duration
    return since[1] + lease.duration_s <= clock


def is_stale(lease: Lease, seen: Seen, clock: float, duration_s: int) -> bool:
    """Seen unchanged for STALE_DURATIONS lease durations (the longer of its own and ours)."""
    since = seen.get(lease.name)
    if since is None or since[0] != lease.version or lease.version is None:
        return False
    return since[1] + STALE_DURATIONS * max(lease.duration_s, duration_s) <= clock


def preference(cluster: str, holder: str) -> int:
    """Rendezvous weight: replicas racing for free Leases each reach first for their own."""
    return int.from_bytes(hashlib.sha256(f"{cluster}\0{holder}".encode()).digest()[:8], "big")


def plan(
    *,
    me: str,
    group: str = DEFAULT_GROUP,
    clusters: frozenset[str],
    leases: Mapping[str, Lease],
    seen: Seen,
    clock: float,
    wall: datetime,
    duration_s: int,
    stopped: Callable[[str], bool],
) -> Plan:
    """One beat: which Leases to write, given the Leases listed, the clusters of the cluster file
    (enabled ones), this replica's identity, the local clock (expiry) and the wall clock (the times
    written). `stopped(cluster)`: that cluster's watches are stopped and its checkpoints written,
    so its Lease may be released now; until then a Lease to release is renewed."""
    members = {me} | {
        lease.subject or lease.holder
        for lease in leases.values()
        if lease.kind is LeaseKind.MEMBER and lease.holder and not is_free(lease, seen, clock)
    }
    share = math.ceil(len(clusters) / len(members)) if clusters else 0
    names = {cluster: cluster_lease_name(group, cluster) for cluster in clusters}
    by_preference = sorted(clusters, key=lambda c: (-preference(c, me), c))

    mine = [c for c in by_preference if (lease := leases.get(names[c])) and lease.holder == me]
    keep = mine[:share]
    surplus = mine[share:]
    wanted_names = set(names.values())
    gone = [
        lease
        for lease in leases.values()
        if lease.kind is LeaseKind.CLUSTER and lease.holder == me and lease.name not in wanted_names
    ]
    free = [
        c for c in by_preference if c not in mine and is_free(leases.get(names[c]), seen, clock)
    ]
    take = free[: max(0, share - len(keep))]

    writes: list[Write] = []
    drop: set[str] = set()
    for cluster in keep:
        writes.append(_renew(leases[names[cluster]], wall, duration_s))
    for lease in [leases[names[c]] for c in surplus] + gone:
        if stopped(lease.subject):
            writes.append(_release(lease, wall))
        else:
            writes.append(_renew(lease, wall, duration_s))
            drop.add(lease.subject)
    for cluster in take:
        writes.append(
            _acquire(
                leases.get(names[cluster]),
                kind=LeaseKind.CLUSTER,
                name=names[cluster],
                subject=cluster,
                me=me,
                wall=wall,
                duration_s=duration_s,
            )
        )
    member = leases.get(member_lease_name(group, me))
    if member is not None and member.holder == me:
        writes.append(_renew(member, wall, duration_s))
    else:
        writes.append(
            _acquire(
                member,
                kind=LeaseKind.MEMBER,
                name=member_lease_name(group, me),
                subject=me,
                me=me,
                wall=wall,
                duration_s=duration_s,
            )
        )
    deletes = tuple(
        lease
        for lease in leases.values()
        if lease.holder != me
        and (
            (lease.kind is LeaseKind.MEMBER and lease.subject != me)
            or (lease.kind is LeaseKind.CLUSTER and lease.name not in wanted_names)
        )
        and is_stale(lease, seen, clock, duration_s)
    )
    return Plan(
        writes=tuple(writes),
        keep=frozenset(keep) | frozenset(take),
        drop=frozenset(drop),
        members=len(members),
        share=share,
        deletes=deletes,
    )


def release_all(*, me: str, leases: Mapping[str, Lease], wall: datetime) -> tuple[Write, ...]:
    """On a graceful stop: release every cluster Lease this replica holds (its membership Lease is
    deleted instead: `own_member`)."""
    return tuple(
        _release(lease, wall)
        for lease in leases.values()
        if lease.holder == me and lease.kind is LeaseKind.CLUSTER
    )


def own_member(*, me: str, group: str, leases: Mapping[str, Lease]) -> Lease | None:
    """This replica's membership Lease, to delete on a graceful stop (None: it has none)."""
    lease = leases.get(member_lease_name(group, me))
    return lease if lease is not None and lease.kind is LeaseKind.MEMBER else None


def _renew(lease: Lease, wall: datetime, duration_s: int) -> Write:
    return Write(Action.RENEW, replace(lease, duration_s=duration_s, renew_time=wall))


def _release(lease: Lease, wall: datetime) -> Write:
    return Write(
        Action.RELEASE,
        replace(lease, holder="", duration_s=RELEASED_DURATION_S, renew_time=wall),
    )


def _acquire(
    previous: Lease | None,
    *,
    kind: LeaseKind,
    name: str,
    subject: str,
    me: str,
    wall: datetime,
    duration_s: int,
) -> Write:
    if previous is None:
        return Write(
            Action.ACQUIRE,
            Lease(
                name=name,
                kind=kind,
                subject=subject,
                holder=me,
                duration_s=duration_s,
                acquire_time=wall,
                renew_time=wall,
            ),
        )
    return Write(
        Action.ACQUIRE,
        replace(
            previous,
            kind=kind,
            subject=subject,
            holder=me,
            duration_s=duration_s,
            acquire_time=wall,
            renew_time=wall,
            transitions=previous.transitions + 1,
        ),
    )

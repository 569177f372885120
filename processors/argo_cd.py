"""Argo CD's Events on Application objects, as catalogue rows: one per message format. Pure.

Emitters: `argocd-application-controller` (`controller/appcontroller.go`) and `argocd-server`
(`server/application/application.go`), both through `util/argo/audit_logger.go`, which creates a new
core/v1 Event for each (count 1, no aggregation). The server's messages are `<user> <action>`, the
user also in the Event's `user` annotation. Formats by release: docs/processors.md ("Argo CD's
formats, by release") and shared/reference/argo-events.md.

Revisions. The controller's auto-sync names the revisions it syncs to; the server names the
*display* revision of each source, `<target> (<resolved>)` when the target was resolved (a branch
or tag to a git sha, a Helm version constraint to a chart version, an OCI tag to a digest) and the
bare revision when it needed no resolving (a sha, an exact chart version). Multi-source operations
name one per source; every one is carried, in order, in the list fields.
"""

from __future__ import annotations

import re

from processors.rules import Family, Fields, Rule, integer, known, row, text, unparsed

A = Family.APPLICATION

_RESOLVED = re.compile(r"(?P<target>.*?) \((?P<resolved>[^(),\s]+)\)")
"""`<target> (<resolved>)`; the target may be empty (an empty `targetRevision`: ` (<sha>)`)."""
_BARE = re.compile(r"[0-9A-Fa-f]{40}")
"""A full git commit sha, which argocd-server shows as typed (`util/git` `IsCommitSHA` accepts both
cases): it needs no resolving."""


def display_revisions(display: str) -> list[tuple[str | None, str]] | None:
    """The sources of an argocd-server display revision, `[(target or None, resolved)]`, the
    target of a bare sha being the sha; None when it does not read as one.

    `server/application/application.go` `Sync` (2.8 to 3.5): the display of each source is
    `<target> (<resolved>)` (git: a sha; Helm: a chart version, also for an exact version,
    `1.2.3 (1.2.3)`; OCI, 3.1+: `sha256:<hex>`), or a full sha given as the revision, shown bare;
    multi-source (2.11+) joins them with `,`, no space. A Helm constraint or a git ref can hold a
    comma itself (`>=1.0.0, <2.0.0 (1.9.3)`) but a resolved revision never does, so a part ends
    where what follows reads as sources too, the shortest such part first."""
    pieces = display.split(",")

    def parse(i: int) -> list[tuple[str | None, str]] | None:
        if i == len(pieces):
            return []
        for j in range(i + 1, len(pieces) + 1):
            found = _source(",".join(pieces[i:j]))
            if found is not None:
                rest = parse(j)
                if rest is not None:
                    return [found, *rest]
        return None

    return parse(0)


def _source(part: str) -> tuple[str | None, str] | None:
    resolved = _RESOLVED.fullmatch(part)
    if resolved is not None:
        return text(resolved["target"].strip()), resolved["resolved"]
    if _BARE.fullmatch(part):
        return part, part
    return None


def _operation_started(
    *,
    initiator: str,
    user: str | None,
    operation: str,
    partial: bool,
    local: bool,
    sources: list[tuple[str | None, str]],
    rollback_id: int | None = None,
) -> Fields:
    revisions = [resolved for _, resolved in sources]
    targets = [target for target, _ in sources]
    return {
        "initiator": initiator,
        "user": user,
        "operation": operation,
        "partial": partial,
        "local": local,
        "revision": revisions[0] if revisions else None,
        "revisions": revisions,
        "target_revision": targets[0] if targets else None,
        "target_revisions": targets,
        "rollback_id": rollback_id,
    }


def _automated(revisions: list[str]) -> Fields:
    return _operation_started(
        initiator="automated",
        user=None,
        operation="sync",
        partial=False,
        local=False,
        sources=[],
    ) | {"revision": revisions[0] if revisions else None, "revisions": revisions}


def _user_sync(found: re.Match[str]) -> Fields | None:
    sources = display_revisions(found["display"].rstrip())
    if sources is None:  # not a display revision: another row's, or a format not known
        return None
    return _operation_started(
        initiator="user",
        user=found["user"],
        operation="sync",
        partial=bool(found["partial"]),
        local=False,
        sources=sources,
    )


def _split(revisions: str, separator: str | None) -> list[str]:
    return [r.strip() for r in revisions.split(separator) if r.strip()]


def _completed(found: re.Match[str], phase: str) -> Fields:
    revisions = _split(found["revision"] or "", ",")
    return {
        "phase": phase,
        "partial": found["partial"] is not None,
        "revision": revisions[0] if revisions else None,
        "revisions": revisions,
        "detail": text(found.groupdict().get("detail")),
    }


ARGOCD_RULES: tuple[Rule, ...] = (
    # --- argocd-application-controller: persistAppStatus ----------------------------------------
    row(
        A,
        "ResourceUpdated",
        # 3.6 (master after #28455) adds ` (Caused by <group>/<Kind>:<ns>/<name>, ...)`.
        r"Updated health status: (?P<from>\S*) -> (?P<to>\S+)(?: \((?P<detail>.*)\))?",
        "application.health_changed",
        lambda m: {"from": m["from"], "to": m["to"], "detail": text(m["detail"])},
    ),
    row(
        A,
        "ResourceUpdated",
        r"Updated sync status: (?P<from>\S*) -> (?P<to>\S+)",
        "application.sync_changed",
        lambda m: {"from": m["from"], "to": m["to"]},
    ),
    # --- argocd-server: the user's edits (not transitions) --------------------------------------
    known(A, "ResourceUpdated", r".+ updated application spec"),
    known(A, "ResourceUpdated", r".+ patched resource \S* '.*'"),  # core group: `/ConfigMap`
    known(A, "ResourceUpdated", r".+ terminated running operation"),
    # a new wording of the sync change stays a sync change (the reason's fallback: health)
    unparsed(
        A,
        "ResourceUpdated",
        r"(?i)\s*updated sync status\b.*",
        "application.sync_changed",
        ("from", "to"),
    ),
    # --- argocd-application-controller: auto-sync -----------------------------------------------
    row(
        A,
        "OperationStarted",
        # 2.8-3.1, 3.2.10+, 3.3.8+, 3.4.0+, 3.5: the resolved revision (a sha, a chart version,
        # an OCI digest); multi-source (2.11.1+) joined with ", " (2.8-2.11.0: always '')
        r"Initiated automated sync to '(?P<revisions>[^']*)'",
        "application.operation_started",
        lambda m: _automated(_split(m["revisions"], ",")),
    ),
    row(
        A,
        "OperationStarted",
        # 3.2.0-3.2.9, 3.3.0-3.3.7, 3.4.0-rc1..rc5 print a Go slice: `[<sha>]`, `[<a> <b>]`, `[]`
        r"Initiated automated sync to \[(?P<revisions>[^\]]*)\]",
        "application.operation_started",
        lambda m: _automated(_split(m["revisions"], None)),
    ),
    # --- argocd-server: a user's sync or rollback -----------------------------------------------
    row(
        A,
        "OperationStarted",
        r"(?P<user>.+?) initiated (?P<partial>partial )?sync locally",
        "application.operation_started",
        lambda m: _operation_started(
            initiator="user",
            user=m["user"],
            operation="sync",
            partial=bool(m["partial"]),
            local=True,
            sources=[],
        ),
    ),
    row(
        A,
        "OperationStarted",
        r"(?P<user>.+?) initiated rollback to (?P<id>\d+)",
        "application.operation_started",
        lambda m: _operation_started(
            initiator="user",
            user=m["user"],
            operation="rollback",
            partial=False,
            local=False,
            sources=[],
            rollback_id=integer(m, "id"),
        ),
    ),
    row(
        A,
        "OperationStarted",
        # `<user>` may hold spaces and colons: `Unknown user`, `admin:login`, `proj:p:r`
        r"(?P<user>.+?) initiated (?P<partial>partial )?sync to (?P<display>.+)",
        "application.operation_started",
        _user_sync,
    ),
    # --- argocd-application-controller: an operation's end --------------------------------------
    row(
        A,
        "OperationCompleted",
        # every release 2.8-3.5; `to <rev>` absent without a sync result, `<rev>` empty for a
        # multi-source app (`Sync operation to  succeeded`): its revisions are never printed
        r"(?:(?P<partial>Partial sync)|Sync) operation(?: to (?P<revision>[^ ]*))? succeeded",
        "application.operation_completed",
        lambda m: _completed(m, "Succeeded"),
    ),
    row(
        A,
        "OperationCompleted",
        r"(?:(?P<partial>Partial sync)|Sync) operation(?: to (?P<revision>[^ ]*))? failed: (?P<detail>.*)",
        "application.operation_completed",
        lambda m: _completed(m, "Failed"),
    ),
    # --- argocd-server: resource actions --------------------------------------------------------
    row(
        A,
        "ResourceActionRan",
        r"(?P<user>.+?) ran action (?P<action>\S+)(?: on resource (?P<resource>\S+))?",
        "application.resource_action",
        lambda m: {"user": m["user"], "action": m["action"], "resource": text(m["resource"])},
    ),
)

"""Interpret one raw record, given what was processed before: its domain events, if any. Pure.

Every fact that depends on which API wrote the Event (core/v1 or events.k8s.io/v1) is read through
`herald_contracts.view_event`, so an Event written either way matches the same rows and gives the same
domain event; only its time is its own. Which Events count is the catalogue's to say (the enabled rule
packs, `processors.catalogue`; by default a Rollout of the `argoproj.io` API group whose emitting
component, `source.component` else `reportingComponent`, is `rollouts-controller`, or an Application
whose emitting component is `argocd-application-controller` or `argocd-server`). `source.component`
comes first because `reportingComponent` is empty up to Argo Rollouts v1.6 and on aggregated Events. A
leading `(combined from similar events): ` is stripped before matching and reported as
`source_message_aggregated`.

Occurrences: `(cluster, Event uid, n)`, `n` being the view's `count` (`series.count`, else `count`, else
1: an events.k8s.io/v1 writer counts repeats in `series.count` only). A record whose
uid was processed before with the same or a higher `n` is a duplicate (a relist, a redelivery, a stale
copy) and produces nothing; a repeat with a higher `n` is a new occurrence. The domain event id is
derived from the occurrence and the catalogue name, so reprocessing yields the same ids.

The caller keeps the state (the last `n` per uid, and whether each object of a source whose rules
declare `state` is aborted: Argo Rollouts' rollouts) and passes it in; the outcome says what to
remember. The agent in `processors.app` keeps it in Faust tables.

What the raw Event holds is not trusted to fit the domain event (issue 9): a time is taken only if it
is RFC 3339 (else the next candidate, last the collection time, which the raw decoder checked); text
fields are cut to `MAX_TEXT`; identifiers of the wrong type or size become null; a count that is not a
positive int32 (what core/v1 declares) counts as absent (the view's rules, which also pick the time).
An event that still cannot be made valid (an object that cannot be named in `source`, a number too
large, text no UTF-8 can carry) is `refused` with the reason, for the caller to dead-letter: every
event `interpret` emits decodes with `decode_domain_event`. Records outside the catalogue are never
refused: they are not read that far.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herald_contracts import (
    EVENT_TYPE_PREFIX,
    ContractError,
    DomainEvent,
    RawRecord,
    WatchType,
    decode_domain_event,
    encode_domain_event,
    object_source,
    observed_at,
    view_event,
)
from processors.catalogue import Catalogue, Effect, FieldError, Matched
from processors.converters import Converter
from processors.packs import builtin_catalogue

AGGREGATED_PREFIX = "(combined from similar events): "
MAX_TEXT = 4096
"""Longest text carried in a domain event field; longer ones are cut and end with '…'."""
MAX_NAME = 253
"""Longest cluster, namespace, name or Event uid (Kubernetes names are at most 253 characters)."""
_ID_NAMESPACE = uuid.UUID("5b0c6f1e-8a4b-4d0e-9a51-6f1e2f3a4b5c")

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Occurrence:
    cluster: str
    uid: str
    n: int

    @property
    def key(self) -> str:
        """The state key of the Event: `<cluster>/<uid>`."""
        return f"{self.cluster}/{self.uid}"


class Abort(enum.StrEnum):
    """Where a rollout stands as to aborts (docs/processors.md, "One abort, one event")."""

    NO = "no"
    """Never aborted, or moved on since (an update, a step, a resume, a completion)."""
    TIMED_OUT = "timed_out"
    """Aborted, told so by the progress-deadline notice; the formatted notice of the same abort
    (`Rollout aborted update to revision <n>...`) may follow, and adds nothing."""
    ABORTED = "aborted"
    """Aborted, told so in Argo Rollouts' own words."""


@dataclass(frozen=True)
class RolloutState:
    """What the processor remembers of a rollout: its abort state and its revision as last named
    by one of its Events (the progress-deadline notice names none)."""

    abort: Abort = Abort.NO
    revision: int | None = None


@dataclass(frozen=True)
class Outcome:
    events: tuple[DomainEvent, ...] = ()
    occurrence: Occurrence | None = None
    """Set when the record was an occurrence to remember (it matched the catalogue, and was new)."""
    duplicate: bool = False
    rollout_key: str | None = None
    rollout: RolloutState | None = None
    """The rollout's state from now on; None leaves it as it was."""
    refused: str | None = None
    """Why a record of the catalogue cannot become a valid domain event (dead-letter it)."""
    not_understood: str | None = None
    """The reason of a catalogued Event whose message no row understood (it gave a flagged event)."""


NOTHING = Outcome()


def rollout_key(record: RawRecord, matched: Matched) -> str | None:
    """The state key of the object a record is about, if its source keeps state: a Rollout's is
    `<cluster>/<ns>/<name>` (as stored since issue 5), any other object's
    `<cluster>/<ns>/<group>/<kind>/<name>`."""
    source = matched.rule.source
    if not source.stateful:
        return None
    involved = _dict(record.object.get("involvedObject"))
    namespace, name = involved.get("namespace", ""), involved.get("name", "")
    if (source.group, source.kind) == ("argoproj.io", "Rollout"):
        return f"{record.cluster}/{namespace}/{name}"
    return f"{record.cluster}/{namespace}/{source.group or ''}/{source.kind}/{name}"


def owner_kinds(record: RawRecord) -> frozenset[str]:
    """The kinds of the involved object's owners as the collector resolved them (`owners`, nearest
    first, and the `workload` at their top); none when it did not resolve them."""
    ownership = record.ownership
    if ownership is None:
        return frozenset()
    kinds = {ref.kind for ref in ownership.owners}
    if ownership.workload is not None:
        kinds.add(ownership.workload.kind)
    return frozenset(kinds)


def occurrence(record: RawRecord) -> Occurrence:
    event = record.object
    uid = _dict(event.get("metadata")).get("uid")
    return Occurrence(record.cluster, str(uid or ""), view_event(event).count)


def interpret(
    record: RawRecord,
    *,
    last_n: int | None,
    rollout: RolloutState = RolloutState(),
    catalogue: Catalogue | None = None,
) -> Outcome:
    """The domain events of one record; `last_n` is the last n processed for its Event uid (None:
    never), `rollout` the state of its object (for a record about one that keeps state),
    `catalogue` the rules (None: the built-in packs)."""
    matched = _match(record, catalogue or builtin_catalogue())
    if isinstance(matched, Outcome):
        return matched
    found, aggregated = matched
    seen = occurrence(record)
    unnamed = _unnamed(record, seen)
    if unnamed is not None:
        return Outcome(refused=unnamed)
    if last_n is not None and seen.n <= last_n:
        return Outcome(duplicate=True)
    key = rollout_key(record, found)
    fields = dict(found.fields)
    new_state, reported = _abort_rule(found.rule.effect, fields, rollout)
    not_understood = None if found.rule.understood else str(record.object.get("reason"))
    if not reported or found.rule.catalogue_name is None:  # (None: refused by `_match`)
        return Outcome(
            occurrence=seen, rollout_key=key, rollout=new_state, not_understood=not_understood
        )
    if found.rule.effect is Effect.TIMES_OUT and fields.get("revision") is None:
        fields["revision"] = rollout.revision
    domain_event = _domain_event(
        record,
        found,
        catalogue or builtin_catalogue(),
        fields,
        seen,
        aggregated=aggregated,
        understood=found.rule.understood,
    )
    invalid = _invalid(domain_event)
    if invalid is not None:
        return Outcome(refused=invalid)
    return Outcome(
        events=(domain_event,),
        occurrence=seen,
        rollout_key=key,
        rollout=new_state,
        not_understood=not_understood,
    )


def _abort_rule(
    effect: Effect, fields: JsonObject, before: RolloutState
) -> tuple[RolloutState | None, bool]:
    """The rollout's state after an event of this effect and whether the event is reported: one
    abort gives one `rollout.aborted`, whichever of its two notices come (docs/processors.md)."""
    revision = fields.get("revision")
    named = revision if isinstance(revision, int) else before.revision
    if effect is Effect.PROGRESSES:
        return RolloutState(Abort.NO, named), True
    if effect is Effect.ABORTS:
        # The formatted notice that follows the progress-deadline notice of the same abort.
        return RolloutState(Abort.ABORTED, named), before.abort is not Abort.TIMED_OUT
    if effect is Effect.TIMES_OUT:
        if before.abort is not Abort.NO:
            return None, False
        return RolloutState(Abort.TIMED_OUT, before.revision), True
    return None, True


def _match(record: RawRecord, catalogue: Catalogue) -> tuple[Matched, bool] | Outcome:
    """The catalogue row of a record, its fields and whether the message was aggregated; or the
    outcome of a record that is not in the catalogue (nothing) or whose fields cannot be carried."""
    if record.watch_type is WatchType.DELETED:
        return NOTHING  # the TTL removing an Event is not a transition
    event = record.object
    reason, message = event.get("reason"), event.get("message")
    if not isinstance(reason, str) or not isinstance(message, str):
        return NOTHING
    try:
        found = catalogue.match(event, message.removeprefix(AGGREGATED_PREFIX), owner_kinds(record))
    except FieldError as e:
        return Outcome(refused=f"{reason}: {e}")
    if found is None or found.rule.catalogue_name is None:
        return NOTHING  # not in the catalogue, or a known format that is not a transition
    return found, message.startswith(AGGREGATED_PREFIX)


def event_id(seen: Occurrence, catalogue_name: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{seen.cluster}/{seen.uid}/{seen.n}/{catalogue_name}"))


def _domain_event(
    record: RawRecord,
    found: Matched,
    catalogue: Catalogue,
    fields: JsonObject,
    seen: Occurrence,
    *,
    aggregated: bool,
    understood: bool,
) -> DomainEvent:
    event = record.object
    catalogue_name = str(found.rule.catalogue_name)
    involved = _dict(event.get("involvedObject"))
    metadata = _dict(event.get("metadata"))
    kind, namespace, name = (_name(involved.get(k)) for k in ("kind", "namespace", "name"))
    when = observed_at(record)
    data: JsonObject = {
        "cluster": record.cluster,
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "observed_at": when,
        "source_reason": event.get("reason"),
        "source_message": _cut(str(event.get("message"))),
        "source_event_uid": seen.uid,
        "source_event_count": seen.n,
        "source_event_resource_version": _identifier(metadata.get("resourceVersion")),
    }
    if aggregated:
        data["source_message_aggregated"] = True
    data["source_message_understood"] = understood
    data.update(_ownership(record))
    for field, convert in found.rule.source.fields.items():
        data[field] = convert(None, event)
    fields = _from_the_event(fields, event, catalogue.types[catalogue_name].when_null)
    data.update({k: _carried(v) for k, v in fields.items()})
    return DomainEvent(
        id=event_id(seen, catalogue_name),
        source=object_source(cluster=record.cluster, namespace=namespace, kind=kind, name=name),
        type=EVENT_TYPE_PREFIX + catalogue_name,
        subject=name,
        time=when,
        data=data,
        key=f"{record.cluster}/{namespace}/{kind}/{name}",
    )


def _ownership(record: RawRecord) -> JsonObject:
    """`workload` and `application` as the collector resolved them (null when it did not, or when
    a name is longer than a Kubernetes name can be: an application's comes from an annotation or
    a label anyone who writes the object chooses). `found_by` says whether Argo CD's tracking
    annotation named the application, or only the `app.kubernetes.io/instance` label, which Helm
    and other tools set too."""
    ownership = record.ownership
    workload = ownership.workload if ownership is not None else None
    app = ownership.application if ownership is not None else None
    if workload is not None and not _fits(workload.kind, workload.name):
        workload = None
    if app is not None and not _fits(app.name, app.namespace or ""):
        app = None
    return {
        "workload": None if workload is None else {"kind": workload.kind, "name": workload.name},
        "application": None
        if app is None
        else {"name": app.name, "namespace": app.namespace, "found_by": app.found_by},
    }


def _fits(*names: str) -> bool:
    return all(len(name) <= MAX_NAME for name in names)


def _from_the_event(
    fields: JsonObject, event: JsonObject, when_null: Mapping[str, Converter]
) -> JsonObject:
    """Fields a message did not give (a wording no rule knows) that the Event itself does, as the
    type declares (`when_null`): argocd-server writes the user in the `user` annotation too
    (`util/argo/audit_logger.go`), and only argocd-server starts an operation for a user (the
    controller's are automated)."""
    filled = dict(fields)
    for name, convert in when_null.items():
        if name in filled and filled[name] is None:
            filled[name] = convert(None, event)
    return filled


def _carried(value: object) -> object:
    """A field's value as the domain event carries it: text cut to `MAX_TEXT`, lists item by item."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, list):
        return [_carried(item) for item in value]
    return value


def _name(value: object) -> str:
    """A name as the domain event carries it: absent or null is ""; `_unnamed` refused the rest."""
    return value if isinstance(value, str) else ""


def _unnamed(record: RawRecord, seen: Occurrence) -> str | None:
    """Why the object a catalogue record is about cannot be named in a domain event, if it cannot:
    its `source` and key are `<cluster>/<namespace>/<kind>/<name>` paths."""
    involved = _dict(record.object.get("involvedObject"))
    parts = {
        "cluster": record.cluster,
        "involvedObject.namespace": involved.get("namespace") or "",
        "involvedObject.name": involved.get("name"),
        "metadata.uid": seen.uid,
    }
    for field, value in parts.items():
        if not isinstance(value, str):
            return f"{field} is not a string: {_shown(value)}"
        if field != "involvedObject.namespace" and not value:
            return f"{field} is empty"
        if len(value) > MAX_NAME:
            return f"{field} is longer than {MAX_NAME} characters ({len(value)})"
        if "/" in value and field != "metadata.uid":
            return f"{field} contains '/': {_shown(value)}"
        if field != "metadata.uid" and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            # The key and `source` are made of it, and the domain topic's key has none.
            return f"{field} holds control characters: {_shown(value)}"
    return None


def _invalid(domain_event: DomainEvent) -> str | None:
    """Why an event would not reach a consumer intact, if it would not: it must encode (a lone
    surrogate cannot be UTF-8) and decode with the contract's own decoder."""
    try:
        decode_domain_event(encode_domain_event(domain_event), key=domain_event.key.encode())
    except UnicodeEncodeError as e:
        return f"text that UTF-8 cannot carry ({e.reason} at {e.start})"
    except ContractError as e:
        return f"the domain event would not decode: {e}"
    return None


def _identifier(value: object) -> str | None:
    """A string identifier carried as it is, or null: cutting would make it a wrong identifier."""
    return value if isinstance(value, str) and len(value) <= MAX_TEXT else None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _dict(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}

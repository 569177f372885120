"""The dispatcher's command line: run the service, migrate, manage subscriptions, read deliveries.

    python -m dispatchers [run]
    python -m dispatchers migrate
    python -m dispatchers subscriptions create --url URL --secret SECRET [--event-type P]...
                                               [--source P]... [--subject P]...
                                               [--cluster P]... [--namespace P]... [--name P]...
                                               [--unordered] [--rate-limit N]
                                               [--header 'Name: value']...
    python -m dispatchers subscriptions list [--json]
    python -m dispatchers subscriptions show ID [--json]
    python -m dispatchers subscriptions update ID [--url URL] [--event-type P]... [--source P]...
                                               [--subject P]... [--cluster P]...
                                               [--namespace P]... [--name P]...
                                               [--ordered | --unordered]
                                               [--rate-limit N | --no-rate-limit]
                                               [--header 'Name: value'... | --no-headers] [--json]
    python -m dispatchers subscriptions disable ID [--reason TEXT]
    python -m dispatchers subscriptions enable ID
    python -m dispatchers subscriptions rotate-secret ID --secret NEW
    python -m dispatchers secrets reseal [--subscription ID]
    python -m dispatchers deliveries list [--subscription ID] [--status S] [--event ID]
                                          [--object CLUSTER/NAMESPACE/KIND/NAME] [--limit N] [--json]
    python -m dispatchers deliveries show ID [--json]
    python -m dispatchers deliveries redeliver ID
    python -m dispatchers deliveries recover --subscription ID --since TIME [--until TIME]
    python -m dispatchers deliveries replay --subscription ID --since TIME [--until TIME]

TIME is ISO 8601 (`2026-08-20T09:00:00Z`; without a zone it is UTC). With `--json`, list and show
print JSON only. Secrets are never printed in full. Bad input gets a message naming it, exit code 2,
and changes nothing (also a `--url` that can never be delivered to: `dispatchers.addresses`, with the
dispatchers' own address policy); an unknown id, exit code 1. Only `secrets reseal` opens stored secrets: every
other command works without the key a secret is sealed with (`show` says which key it is), and
reseal exits 2 naming it.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from dispatchers.addresses import STRICT, AddressPolicy, UrlError, check_target
from dispatchers.custom_headers import HeaderError, parse_headers, redact_value
from dispatchers.matching import SubscriptionFilter
from dispatchers.model import StoreError, Stores, Subscription
from dispatchers.sealing import SealError
from dispatchers.signing import SecretError, redact, secret_key
from herald_contracts import EVENT_TYPE_PREFIX, EVENT_TYPES

STATUSES = ("pending", "retrying", "delivered", "failed")


class InputError(ValueError):
    """Bad command-line input: exit code 2, nothing written."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m dispatchers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command")
    commands.add_parser("run", help="consume the domain topic and deliver webhooks (the default)")
    commands.add_parser("migrate", help="apply the database migrations (idempotent)")

    _subscription_commands(commands)
    secrets = commands.add_parser("secrets", help="webhook secrets at rest")
    sealing = secrets.add_subparsers(dest="action", required=True)
    reseal = sealing.add_parser(
        "reseal",
        help="seal every stored secret with the first key of HERALD_SECRETS_KEYS (those stored"
        " as given, or sealed with an older key)",
    )
    reseal.add_argument("--subscription", type=_uuid, help="only this subscription's")

    deliveries = commands.add_parser("deliveries", help="read the delivery log, redeliver")
    dl = deliveries.add_subparsers(dest="action", required=True)
    listing = _json(dl.add_parser("list", help="list deliveries, newest first"))
    listing.add_argument("--subscription", type=_uuid)
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--event", help="one event's deliveries (its id, the webhook-id)")
    listing.add_argument(
        "--object", help="what was sent about one object: CLUSTER/NAMESPACE/KIND/NAME"
    )
    listing.add_argument("--limit", type=int, default=100)
    _json(_with_id(dl.add_parser("show", help="one delivery with every attempt")))
    _with_id(dl.add_parser("redeliver", help="send it again now, with a new round of tries"))
    recover = dl.add_parser("recover", help="requeue every failed delivery in a time range")
    recover.add_argument("--subscription", type=_uuid, required=True)
    recover.add_argument("--since", type=_time, required=True)
    recover.add_argument("--until", type=_time)
    replay = dl.add_parser(
        "replay",
        help="send a subscription the stored events of a time range it has not been sent"
        " (created later, disabled meanwhile, filters widened since)",
    )
    replay.add_argument("--subscription", type=_uuid, required=True)
    replay.add_argument("--since", type=_time, required=True, help="event time, inclusive")
    replay.add_argument("--until", type=_time, help="event time, exclusive")
    return root


def _subscription_commands(commands: Any) -> None:
    subscriptions = commands.add_parser("subscriptions", help="manage subscriptions")
    sub = subscriptions.add_subparsers(dest="action", required=True)
    create = sub.add_parser("create", help="create a subscription; prints its id")
    create.add_argument("--url", required=True, help="http or https URL of the receiver")
    create.add_argument("--secret", required=True, action="append", help="whsec_<base64>")
    create.add_argument("--event-type", action="append", default=[], help=TYPE_HELP)
    create.add_argument(
        "--source", action="append", default=[], help="glob on the CloudEvents source"
    )
    create.add_argument(
        "--subject", action="append", default=[], help="glob on the CloudEvents subject"
    )
    create.add_argument("--cluster", action="append", default=[], help="glob on the cluster")
    create.add_argument("--namespace", action="append", default=[], help="glob on the namespace")
    create.add_argument("--name", action="append", default=[], help="glob on the object name")
    create.add_argument(
        "--unordered", action="store_true", help="do not hold an object's later events back"
    )
    create.add_argument("--rate-limit", type=_rate, help=RATE_HELP)
    create.add_argument("--header", action="append", default=[], help=HEADER_HELP)
    update = _json(
        _with_id(
            sub.add_parser(
                "update",
                help="change the URL, filters or ordering (a filter option replaces that filter;"
                " '*' matches everything); prints the subscription",
            )
        )
    )
    update.add_argument("--url", help="http or https URL of the receiver")
    update.add_argument("--event-type", action="append", help=TYPE_HELP)
    for option, what in (
        ("--source", "CloudEvents source"),
        ("--subject", "CloudEvents subject"),
        ("--cluster", "cluster"),
        ("--namespace", "namespace"),
        ("--name", "object name"),
    ):
        update.add_argument(option, action="append", help=f"glob on the {what}")
    ordering = update.add_mutually_exclusive_group()
    ordering.add_argument("--ordered", dest="ordered", action="store_const", const=True)
    ordering.add_argument("--unordered", dest="ordered", action="store_const", const=False)
    limiting = update.add_mutually_exclusive_group()
    limiting.add_argument("--rate-limit", type=_rate, help=RATE_HELP)
    limiting.add_argument("--no-rate-limit", action="store_true", help="lift the rate limit")
    heading = update.add_mutually_exclusive_group()
    heading.add_argument("--header", action="append", help=HEADER_HELP + " (replaces them all)")
    heading.add_argument("--no-headers", action="store_true", help="send no headers of its own")
    _json(sub.add_parser("list", help="list subscriptions"))
    _json(_with_id(sub.add_parser("show", help="one subscription")))
    disable = _with_id(sub.add_parser("disable", help="stop delivering to it"))
    disable.add_argument("--reason", default="disabled by an operator")
    _with_id(sub.add_parser("enable", help="deliver to it again"))
    rotate = _with_id(
        sub.add_parser(
            "rotate-secret",
            help="sign with a new secret; the old ones keep signing for HERALD_SECRET_GRACE_S",
        )
    )
    rotate.add_argument("--secret", required=True, help="the new whsec_<base64>")


def _with_id(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("id", type=_uuid)
    return command


def _json(command: argparse.ArgumentParser) -> argparse.ArgumentParser:
    command.add_argument("--json", action="store_true", help="print JSON only")
    return command


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {text!r}") from None


HEADER_HELP = (
    "'Name: value' added to every webhook, e.g. 'Authorization: Bearer ...' (sealed at rest)"
)
TYPE_HELP = (
    "glob on the CloudEvents type, any producer's (e.g. 'com.example.app.*'); for Herald's events"
    " also on the catalogue name (e.g. 'rollout.*' for 'dev.herald.rollout.*')"
)
RATE_HELP = "at most N messages per second to it, across every dispatcher (e.g. 5 or 0.5)"


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"not a rate: {text!r} (messages per second, above 0, e.g. 5 or 0.5)"
        )
    return value


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-08-20T09:00:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def run_admin(
    args: argparse.Namespace,
    store: Stores,
    out: Callable[[str], None],
    *,
    err: Callable[[str], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    secret_grace: timedelta = timedelta(days=1),
    address_policy: AddressPolicy = STRICT,
) -> int:
    """Run a management command (anything but `run`); return the exit code. Results go to `out`,
    errors to `err` (standard error by default), so `--json` output stays JSON. A URL is judged
    by `address_policy` (the dispatchers' own, read from the same settings)."""
    complain = err or _stderr
    try:
        return _run(
            args,
            store,
            out,
            complain,
            now=now(),
            secret_grace=secret_grace,
            policy=address_policy,
        )
    except InputError as e:
        complain(f"error: {e}")
        return 2
    except StoreError as e:
        complain(f"error: the database: {e}")
        return 1
    except SealError as e:
        complain(f"error: HERALD_SECRETS_KEYS: {e}")
        return 2


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _run(  # noqa: PLR0911, PLR0912 (one branch per command)
    args: argparse.Namespace,
    store: Stores,
    out: Callable[[str], None],
    err: Callable[[str], None],
    *,
    now: datetime,
    secret_grace: timedelta,
    policy: AddressPolicy,
) -> int:
    command = (args.command, getattr(args, "action", None))
    if command == ("migrate", None):
        applied = store.migrate()
        out("applied: " + ", ".join(applied) if applied else "up to date")
        return 0
    if command == ("subscriptions", "create"):
        subscription_id = store.subscriptions.create(
            url=_checked_url(args.url, policy),
            secrets=[_checked_secret(s) for s in args.secret],
            filter=SubscriptionFilter(
                event_types=_checked_types(args.event_type),
                sources=_checked_globs("--source", args.source),
                subjects=_checked_globs("--subject", args.subject),
                clusters=tuple(args.cluster),
                namespaces=tuple(args.namespace),
                names=tuple(args.name),
            ),
            ordered=not args.unordered,
            rate_limit_per_s=args.rate_limit,
            headers=_checked_headers(args.header) or (),
        )
        out(str(subscription_id))
        return 0
    if command == ("subscriptions", "list"):
        rows = [_subscription_view(s) for s in store.subscriptions.all()]
        _print(rows, as_json=args.json, out=out, columns=("id", "url", "enabled", "event_types"))
        return 0
    if command == ("subscriptions", "show"):
        subscription = store.subscriptions.get(args.id)
        if subscription is None:
            return _missing(err, "subscription", args.id)
        _show(_subscription_view(subscription), as_json=args.json, out=out)
        return 0
    if command == ("subscriptions", "update"):
        return _update(args, store, out, err, now=now, policy=policy)
    if command in (("subscriptions", "disable"), ("subscriptions", "enable")):
        enabled = args.action == "enable"
        reason = None if enabled else args.reason
        if not store.subscriptions.set_enabled(args.id, enabled=enabled, reason=reason, now=now):
            return _missing(err, "subscription", args.id)
        out(f"{args.id} {'enabled' if enabled else 'disabled'}")
        return 0
    if command == ("subscriptions", "rotate-secret"):
        secret = _checked_secret(args.secret)
        if not store.subscriptions.rotate_secret(args.id, secret, now=now, grace=secret_grace):
            return _missing(err, "subscription", args.id)
        until = (now + secret_grace).isoformat(timespec="seconds")
        out(f"{args.id} now signs with {redact(secret)}; the previous secrets also until {until}")
        return 0
    if command == ("deliveries", "list"):
        if args.limit < 1:
            raise InputError("--limit must be at least 1")
        if args.object is not None and len(args.object.split("/")) != 4:
            raise InputError(
                f"--object {args.object!r}: expected CLUSTER/NAMESPACE/KIND/NAME,"
                " e.g. prod-eu/billing/Rollout/payments"
            )
        rows = store.log.deliveries(
            subscription_id=args.subscription,
            status=args.status,
            event_id=args.event,
            object_key=args.object,
            limit=args.limit,
        )
        columns = ("id", "event_id", "subscription_id", "status", "attempt_count")
        _print(rows, as_json=args.json, out=out, columns=columns)
        return 0
    if command == ("deliveries", "show"):
        delivery = store.log.delivery(args.id)
        if delivery is None:
            return _missing(err, "delivery", args.id)
        _show(delivery, as_json=args.json, out=out)
        return 0
    if command == ("deliveries", "redeliver"):
        if not store.log.redeliver(args.id, now=now):
            return _missing(err, "delivery", args.id)
        out(f"{args.id} will be sent again")
        return 0
    if command == ("secrets", "reseal"):
        key = store.subscriptions.sealing_key
        if key is None:
            raise InputError("HERALD_SECRETS_KEYS is not set: there is no key to seal with")
        if args.subscription is not None and store.subscriptions.get(args.subscription) is None:
            return _missing(err, "subscription", args.subscription)
        out(
            f"{store.subscriptions.reseal(only=args.subscription)} subscriptions resealed with key {key!r}"
        )
        return 0
    if command in (("deliveries", "recover"), ("deliveries", "replay")):
        return _requeue(args, store, out, err, now=now)
    raise InputError(f"unknown command {' '.join(c for c in command if c)}")


def _requeue(
    args: argparse.Namespace,
    store: Stores,
    out: Callable[[str], None],
    err: Callable[[str], None],
    *,
    now: datetime,
) -> int:
    """`deliveries recover` (failed deliveries again) and `deliveries replay` (events never sent)."""
    if args.until is not None and args.until <= args.since:
        raise InputError("--until must be after --since")
    subscription = store.subscriptions.get(args.subscription)
    if subscription is None:
        return _missing(err, "subscription", args.subscription)
    if args.action == "recover":
        count = store.log.recover(subscription.id, since=args.since, until=args.until, now=now)
        out(f"{count} failed deliveries requeued")
    else:
        count = store.events.replay(subscription, since=args.since, until=args.until, now=now)
        out(f"{count} events queued for {subscription.id}")
    return 0


def _update(
    args: argparse.Namespace,
    store: Stores,
    out: Callable[[str], None],
    err: Callable[[str], None],
    *,
    now: datetime,
    policy: AddressPolicy,
) -> int:
    changes = {
        "event_types": _checked_types(args.event_type) if args.event_type else None,
        "sources": args.source and _checked_globs("--source", args.source),
        "subjects": args.subject and _checked_globs("--subject", args.subject),
        "clusters": args.cluster,
        "namespaces": args.namespace,
        "names": args.name,
        "ordered": args.ordered,
        "rate_limit_per_s": args.rate_limit,
        "headers": () if args.no_headers else _checked_headers(args.header),
    }
    url = _checked_url(args.url, policy) if args.url is not None else None
    if url is None and not args.no_rate_limit and all(v is None for v in changes.values()):
        raise InputError(
            "nothing to update: give --url, --event-type, --source, --subject, --cluster,"
            " --namespace, --name, --ordered, --unordered, --rate-limit, --no-rate-limit, --header"
            " or --no-headers"
        )
    if not store.subscriptions.update(
        args.id, now=now, url=url, unlimited=args.no_rate_limit, **changes
    ):
        return _missing(err, "subscription", args.id)
    updated = store.subscriptions.get(args.id)
    if updated is None:  # deleted meanwhile
        return _missing(err, "subscription", args.id)
    _show(_subscription_view(updated), as_json=args.json, out=out)
    return 0


def _checked_headers(texts: list[str] | None) -> tuple[tuple[str, str], ...] | None:
    if texts is None:
        return None
    try:
        return parse_headers(texts)
    except HeaderError as e:
        raise InputError(f"--header: {e}") from e


def _checked_url(url: str, policy: AddressPolicy) -> str:
    """What can be told from the URL alone; a host name is judged at each attempt, when it is
    resolved (what it resolves to here, or now, need not be what it resolves to there, later)."""
    try:
        return check_target(url, policy)
    except UrlError as e:
        raise InputError(f"--url: {e}") from e


def _checked_secret(secret: str) -> str:
    try:
        secret_key(secret)
    except SecretError as e:
        raise InputError(f"--secret: {e}") from e
    return secret


def _checked_globs(option: str, patterns: Sequence[str]) -> tuple[str, ...]:
    """An empty pattern matches nothing any event has: refused rather than a silent dead filter."""
    if any(not p for p in patterns):
        raise InputError(f"{option} must not be empty")
    return tuple(patterns)


def _checked_types(patterns: Sequence[str]) -> tuple[str, ...]:
    """Any producer's type is welcome, and so is any type of a user's rule pack (which this
    dispatcher does not load), so a pattern is refused only where it is clearly meant for the
    built-in packs' types and matches none of them (a typo such as `rollout.done`): it starts with
    a built-in family (`rollout.`, `application.`, ...), with or without `dev.herald.`."""
    herald_types = [*EVENT_TYPES, *(EVENT_TYPE_PREFIX + t for t in EVENT_TYPES)]
    families = sorted({t.split(".")[0] + "." for t in EVENT_TYPES})
    meant_for_herald = (*families, *(EVENT_TYPE_PREFIX + f for f in families))
    for pattern in patterns:
        if not pattern:
            raise InputError("--event-type must not be empty")
        if pattern.startswith(meant_for_herald) and not any(
            fnmatchcase(t, pattern) for t in herald_types
        ):
            raise InputError(
                f"--event-type {pattern!r} matches no event type; Herald's types are "
                + ", ".join(EVENT_TYPES)
            )
    return tuple(patterns)


def _missing(out: Callable[[str], None], what: str, ident: uuid.UUID) -> int:
    out(f"error: no {what} {ident}")
    return 1


def _subscription_view(subscription: Subscription) -> dict[str, Any]:
    unopened = subscription.unopened
    return {
        "id": str(subscription.id),
        "url": subscription.url,
        "secrets": [redact(s) for s in subscription.secrets],
        "event_types": list(subscription.filter.event_types),
        "sources": list(subscription.filter.sources),
        "subjects": list(subscription.filter.subjects),
        "clusters": list(subscription.filter.clusters),
        "namespaces": list(subscription.filter.namespaces),
        "names": list(subscription.filter.names),
        "ordered": subscription.ordered,
        "rate_limit_per_s": subscription.rate_limit_per_s,
        "headers": {name: redact_value(value) for name, value in subscription.headers},
        "enabled": subscription.enabled,
        "disabled_reason": subscription.disabled_reason,
        "created_at": subscription.created_at.isoformat(),
        "updated_at": subscription.updated_at.isoformat(),
        # Only when they do not open (then `secrets` and `headers` are empty): why, naming the key.
        **({"secrets_unopened": unopened.reason} if unopened is not None else {}),
    }


def _print(
    rows: Sequence[dict[str, Any]],
    *,
    as_json: bool,
    out: Callable[[str], None],
    columns: Sequence[str],
) -> None:
    if as_json:
        out(json.dumps(list(rows), default=str, indent=2))
        return
    out("\t".join(columns))
    for row in rows:
        out("\t".join(str(row.get(c, "")) for c in columns))


def _show(item: dict[str, Any], *, as_json: bool, out: Callable[[str], None]) -> None:
    if as_json:
        out(json.dumps(item, default=str, indent=2))
        return
    for key, value in item.items():
        if key == "attempts":
            out(f"attempts ({len(value)}):")
            for a in value:
                what = a.get("status_code") or a.get("error")
                out(f"  #{a['attempt_number']} {a['started_at']} {a['duration_ms']} ms: {what}")
        elif key == "event":
            out(f"event: {json.dumps(value, default=str)}")
        else:
            out(f"{key}: {value}")

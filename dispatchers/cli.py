"""The dispatcher's command line: run the service, migrate, manage subscriptions, read deliveries.

    python -m dispatchers [run]
    python -m dispatchers migrate
    python -m dispatchers subscriptions create --url URL --secret SECRET [--event-type P]...
                                               [--cluster P]... [--namespace P]... [--name P]...
                                               [--unordered]
    python -m dispatchers subscriptions list [--json]
    python -m dispatchers deliveries list [--subscription ID] [--status S] [--json]

Secrets are never printed in full.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from dispatchers.matching import SubscriptionFilter
from dispatchers.postgres import Store, Subscription
from dispatchers.signing import SecretError, redact, secret_key


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m dispatchers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command")
    commands.add_parser("run", help="consume the domain topic and deliver webhooks (the default)")
    commands.add_parser("migrate", help="apply the database migrations (idempotent)")

    subscriptions = commands.add_parser("subscriptions", help="manage subscriptions")
    sub_commands = subscriptions.add_subparsers(dest="action", required=True)
    create = sub_commands.add_parser("create", help="create a subscription; prints its id")
    create.add_argument("--url", required=True)
    create.add_argument("--secret", required=True, action="append", help="whsec_<base64>")
    create.add_argument("--event-type", action="append", default=[], help="e.g. rollout.*")
    create.add_argument("--cluster", action="append", default=[])
    create.add_argument("--namespace", action="append", default=[])
    create.add_argument("--name", action="append", default=[])
    create.add_argument("--unordered", action="store_true")
    listing = sub_commands.add_parser("list", help="list subscriptions")
    listing.add_argument("--json", action="store_true")

    deliveries = commands.add_parser("deliveries", help="read the delivery log")
    del_commands = deliveries.add_subparsers(dest="action", required=True)
    del_list = del_commands.add_parser("list", help="list deliveries, newest first")
    del_list.add_argument("--subscription", type=uuid.UUID)
    del_list.add_argument("--status", choices=["pending", "retrying", "delivered", "failed"])
    del_list.add_argument("--json", action="store_true")
    return root


def run_admin(args: argparse.Namespace, store: Store, out: Callable[[str], None]) -> int:
    """Run a management command (anything but `run`); return the exit code."""
    if args.command == "migrate":
        applied = store.migrate()
        out("applied: " + ", ".join(applied) if applied else "up to date")
        return 0
    if args.command == "subscriptions" and args.action == "create":
        try:
            for secret in args.secret:
                secret_key(secret)
        except SecretError as e:
            out(f"error: --secret: {e}")
            return 2
        subscription_id = store.create_subscription(
            url=args.url,
            secrets=args.secret,
            filter=SubscriptionFilter(
                event_types=tuple(args.event_type),
                clusters=tuple(args.cluster),
                namespaces=tuple(args.namespace),
                names=tuple(args.name),
            ),
            ordered=not args.unordered,
        )
        out(str(subscription_id))
        return 0
    if args.command == "subscriptions" and args.action == "list":
        rows = [_subscription_view(s) for s in store.subscriptions()]
        _print(rows, as_json=args.json, out=out, columns=("id", "url", "enabled", "event_types"))
        return 0
    if args.command == "deliveries" and args.action == "list":
        rows = store.deliveries(subscription_id=args.subscription, status=args.status)
        _print(
            rows,
            as_json=args.json,
            out=out,
            columns=("id", "event_id", "subscription_id", "status", "attempt_count"),
        )
        return 0
    out(f"unknown command {args.command}")
    return 2


def _subscription_view(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": str(subscription.id),
        "url": subscription.url,
        "secrets": [redact(s) for s in subscription.secrets],
        "event_types": list(subscription.filter.event_types),
        "clusters": list(subscription.filter.clusters),
        "namespaces": list(subscription.filter.namespaces),
        "names": list(subscription.filter.names),
        "ordered": subscription.ordered,
        "enabled": subscription.enabled,
        "disabled_reason": subscription.disabled_reason,
        "created_at": subscription.created_at.isoformat(),
        "updated_at": subscription.updated_at.isoformat(),
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


def fail(message: str) -> None:
    sys.exit(f"dispatcher: {message}")

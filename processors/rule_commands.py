"""`python -m processors rules ...`: check a directory of rule packs, try them on recorded Events,
write the schemas they derive. Reads files, prints; connects to nothing.

- `rules check DIR`: load the built-in packs and DIR's as the processor would; print each pack of DIR,
  its rules and the types it emits with their `dataschema`; exit 1 naming file, rule and reason when
  one does not load.
- `rules test DIR EVENTS.jsonl`: each line a core/v1 Event (as `python -m collectors replay` reads
  them: `_cluster` and `_watch_type` optional) or a raw record as the raw topic holds it (with the
  owners the collector resolved, which sources with `owner_kinds` need); print per line the rule that matched and the domain
  event, or why none did (no rule for its group/kind/component/reason, or the patterns of its
  reason's rules that did not match). Lines are interpreted in order with the state a processor
  keeps (repeats, aborts), like `argocd admin notifications trigger run`.
- `rules schemas OUT [DIR] [--envelope schemas/deploy-event.v1.schema.json]`: write
  `OUT/data/<type>.v1.schema.json` for every type (the built-in packs' and DIR's),
  `OUT/rule-pack.v1.schema.json`, and with `--envelope` the domain event envelope knowing every type.

`--packs` names the built-in packs enabled (default: those the processor enables,
`HERALD_PROCESSOR_RULE_PACKS` else `argo-rollouts,argo-cd`; for `schemas`, every built-in pack).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from herald_contracts import (
    EVENT_TYPE_PREFIX,
    ContractError,
    RawRecord,
    WatchType,
    data_schema_uri,
    decode_raw_record,
    view_event,
)
from processors.catalogue import Catalogue, api_group
from processors.interpreting import (
    AGGREGATED_PREFIX,
    Outcome,
    RolloutState,
    interpret,
    owner_kinds,
)
from processors.packs import (
    BUILTIN_PACKS,
    DEFAULT_PACKS,
    SCHEMA_FILE,
    PackError,
    load_catalogue,
    pack_files,
)
from processors.schemas import data_schemas, with_types


def main(argv: list[str], *, out: TextIO = sys.stdout) -> int:
    """Run one `rules` command; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m processors rules")
    parser.add_argument(
        "--packs",
        default=None,
        help="built-in packs enabled, comma-separated, or 'none' (default: as the processor,"
        " HERALD_PROCESSOR_RULE_PACKS else argo-rollouts,argo-cd; for `schemas`, every built-in"
        " pack, whose types are all published)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a directory of packs, list their types")
    check.add_argument("dir", type=Path)
    test = commands.add_parser("test", help="show what each recorded Event gives")
    test.add_argument("dir", type=Path)
    test.add_argument("events", type=Path)
    schemas = commands.add_parser("schemas", help="write the derived JSON Schemas")
    schemas.add_argument("out", type=Path)
    schemas.add_argument("dir", type=Path, nargs="?")
    schemas.add_argument(
        "--envelope",
        type=Path,
        help="the published deploy-event.v1.schema.json: also write it with every type's condition",
    )
    args = parser.parse_args(argv)
    packs = args.packs
    if packs is None:
        everything = args.command == "schemas"
        packs = ",".join(BUILTIN_PACKS if everything else DEFAULT_PACKS)
        packs = packs if everything else os.environ.get("HERALD_PROCESSOR_RULE_PACKS", packs)
    builtin = tuple(p.strip() for p in packs.split(",") if p.strip() and packs != "none")
    try:
        catalogue = load_catalogue(builtin=builtin, directory=args.dir)
    except PackError as e:
        print(f"rules: {e}", file=sys.stderr)
        return 1
    if args.command == "check":
        return _check(catalogue, args.dir, out)
    if args.command == "test":
        return _test(catalogue, args.events, out)
    return _schemas(catalogue, args.out, out, envelope=args.envelope)


def _check(catalogue: Catalogue, directory: Path, out: TextIO) -> int:
    files = pack_files(directory)
    user_packs = catalogue.packs[len(catalogue.packs) - len(files) :]
    for file, pack in zip(files, user_packs, strict=True):
        rules = [r for r in catalogue.rules if r.source.pack == pack]
        print(f"{file}: pack {pack}: {len(rules)} rules, OK", file=out)
        for name, spec in catalogue.types.items():
            if spec.pack == pack:
                print(f"  emits {EVENT_TYPE_PREFIX}{name}  {data_schema_uri(name)}", file=out)
    if not files:
        print(f"{directory}: no packs (*.yaml, *.yml)", file=out)
    return 0


def _test(catalogue: Catalogue, events: Path, out: TextIO) -> int:
    last_n: dict[str, int] = {}
    states: dict[str, RolloutState] = {}
    try:
        lines = events.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        print(f"rules: {events}: {e}", file=sys.stderr)
        return 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{events}:{number}"
        try:
            event = json.loads(line)
        except ValueError as e:
            print(f"{where}: not an Event: {e}", file=out)
            continue
        if not isinstance(event, dict):
            print(f"{where}: not an Event: not a JSON object", file=out)
            continue
        if "object" in event and "cluster" in event:  # a raw record, as the raw topic holds it
            try:
                record = decode_raw_record(line.encode())
            except ContractError as e:
                print(f"{where}: not a raw record: {e}", file=out)
                continue
            event = record.object
        else:
            cluster = str(event.pop("_cluster", "cluster"))
            try:
                watch_type = WatchType(str(event.pop("_watch_type", "ADDED")))
            except ValueError as e:
                print(f"{where}: not an Event: _watch_type {e}", file=out)
                continue
            record = RawRecord(
                cluster=cluster, watch_type=watch_type, collected_at=_time(event), object=event
            )
        first = interpret(record, last_n=None, catalogue=catalogue)
        key = first.occurrence.key if first.occurrence is not None else None
        state = states.get(first.rollout_key or "", RolloutState())
        outcome = interpret(
            record,
            last_n=last_n.get(key) if key else None,
            rollout=state,
            catalogue=catalogue,
        )
        if outcome.occurrence is not None and not outcome.duplicate:
            last_n[outcome.occurrence.key] = outcome.occurrence.n
        if outcome.rollout_key is not None and outcome.rollout is not None:
            states[outcome.rollout_key] = outcome.rollout
        print(f"{where}: {_explained(catalogue, record, outcome)}", file=out)
        for domain_event in outcome.events:
            print("  " + json.dumps(domain_event.to_cloudevent(), sort_keys=True), file=out)
    return 0


def _explained(catalogue: Catalogue, record: RawRecord, outcome: Outcome) -> str:  # noqa: PLR0911 - one answer per case
    """Which rule matched, or why none did."""
    event = record.object
    kinds = owner_kinds(record)
    involved = event.get("involvedObject")
    involved = involved if isinstance(involved, dict) else {}
    reason, message = event.get("reason"), event.get("message")
    candidates = catalogue.candidates(event, kinds)
    if not candidates:
        return "no rule for group {!r}, kind {!r}, component {!r}, reason {!r}{}".format(
            api_group(involved.get("apiVersion")),
            involved.get("kind"),
            view_event(event).component,
            reason,
            f", owner kinds {sorted(kinds)}" if catalogue.candidates(event, None) else "",
        )
    if outcome.refused is not None:
        return f"refused (dead-lettered): {outcome.refused}"
    if outcome.duplicate:
        return "a repeat already processed: nothing"
    text = message.removeprefix(AGGREGATED_PREFIX) if isinstance(message, str) else ""
    found = catalogue.match(event, text, kinds) if isinstance(message, str) else None
    if found is None:
        return "no rule matched (not an Event with a reason and a message)"
    tried = [r.name for r in candidates if not r.fallback and r is not found.rule]
    if found.rule.fallback:
        return f"no rule's pattern matched ({', '.join(tried)}): {found.rule.name}, flagged"
    if found.rule.catalogue_name is None:
        return f"rule {found.rule.name}: a known format that is not a transition: nothing"
    if not outcome.events:
        return f"rule {found.rule.name}: suppressed by the object's state ({found.rule.effect})"
    return f"rule {found.rule.name}"


def _time(event: dict[str, Any]) -> str:
    for name in ("lastTimestamp", "eventTime", "firstTimestamp"):
        value = event.get(name)
        if isinstance(value, str) and value:
            return value
    metadata = event.get("metadata")
    created = metadata.get("creationTimestamp") if isinstance(metadata, dict) else None
    return created if isinstance(created, str) else "1970-01-01T00:00:00Z"


def _schemas(catalogue: Catalogue, out_dir: Path, out: TextIO, *, envelope: Path | None) -> int:
    files = {**data_schemas(catalogue), "rule-pack.v1.schema.json": SCHEMA_FILE.read_text()}
    if envelope is not None:
        derived = with_types(json.loads(envelope.read_text()), catalogue)
        files["deploy-event.v1.schema.json"] = json.dumps(derived, indent=2) + "\n"
    for path, text in files.items():
        target = out_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        print(f"wrote {target}", file=out)
    return 0

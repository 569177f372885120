"""Rule packs: YAML files of rules, validated and compiled into a `Catalogue`. Reads files.

A pack is checked against `rule-pack.v1.schema.json` (published in `schemas/`), then for what a
schema cannot say: a pattern that does not compile, a group a field reads that the pattern lacks, a
type a rule emits that the pack does not declare, a field the type does not have, a type prefix taken
by another pack. Every refusal is a `PackError` naming the file, the rule and the reason. The built-in
packs (`argo-rollouts`, `argo-cd`, enabled by default; `kubernetes` and `flux`, enabled by naming them)
are package data beside this module; users add a directory of `*.yaml` packs. Loading happens once,
at start (`processors.__main__`) or in the `rules` commands.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from processors.catalogue import Catalogue, TypeSpec
from processors.converters import OF_THE_MATCH, Converter, Kind, compile_field
from processors.rules import Effect, Rule, Source

PACKS_DIR = Path(__file__).resolve().parent / "packs"
SCHEMA_FILE = PACKS_DIR / "rule-pack.v1.schema.json"
BUILTIN_PACKS: tuple[str, ...] = ("argo-rollouts", "argo-cd", "kubernetes", "flux")
"""The built-in packs by name (`processors/packs/<name>.yaml`): each can be enabled by name."""
DEFAULT_PACKS: tuple[str, ...] = ("argo-rollouts", "argo-cd")
"""The built-in packs enabled when HERALD_PROCESSOR_RULE_PACKS is unset."""
RESERVED_PREFIXES = ("rollout.", "application.", "kubernetes.", "flux.")
"""Type prefixes of the built-in packs: no user pack may declare them, enabled or not."""


COMMON_FIELDS = frozenset(
    {
        "cluster",
        "kind",
        "namespace",
        "name",
        "observed_at",
        "source_reason",
        "source_message",
        "source_event_uid",
        "source_event_count",
        "source_event_resource_version",
        "source_message_aggregated",
        "source_message_understood",
        "workload",
        "application",
    }
)
"""The data fields every domain event has (schemas/data/common.v1.schema.json): no pack redefines
them."""


class PackError(ValueError):
    """A pack that cannot be loaded: `<file>: rule <rule>: <reason>`."""

    def __init__(self, file: str, rule: str | None, reason: str) -> None:
        self.file, self.rule, self.reason = file, rule, reason
        where = f"{file}: rule {rule}" if rule else file
        super().__init__(f"{where}: {reason}")


@functools.cache
def _validator() -> Any:
    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft202012Validator(schema)


def builtin_path(name: str) -> Path:
    return PACKS_DIR / f"{name}.yaml"


def pack_files(directory: Path) -> list[Path]:
    """The packs of a directory: its `*.yaml` and `*.yml` files, by name (a ConfigMap mounted as a
    directory also holds `..data` links and dot-directories, which are skipped)."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )


def load_catalogue(
    *, builtin: Sequence[str] = DEFAULT_PACKS, directory: Path | None = None
) -> Catalogue:
    """The catalogue of the named built-in packs and every pack in `directory`. PackError."""
    files = [builtin_path(name) for name in builtin]
    for name in builtin:
        if name not in BUILTIN_PACKS:
            raise PackError(
                name, None, f"no built-in pack of this name (known: {', '.join(BUILTIN_PACKS)})"
            )
    if directory is not None:
        if not directory.is_dir():
            raise PackError(str(directory), None, "not a directory")
        files += pack_files(directory)
    return compile_packs([(str(f), read_pack(f), f.parent == PACKS_DIR) for f in files])


def read_pack(path: Path) -> Any:
    """A pack file's YAML, safely loaded. PackError when it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise PackError(str(path), None, f"cannot be read: {e}") from e
    except yaml.YAMLError as e:
        raise PackError(str(path), None, f"not YAML: {e}") from e


@functools.cache
def builtin_catalogue() -> Catalogue:
    """The default catalogue: the built-in packs enabled by default (`DEFAULT_PACKS`)."""
    return load_catalogue()


@functools.cache
def known_catalogue() -> Catalogue:
    """Every built-in pack's rules, enabled by default or not (their types are published)."""
    return load_catalogue(builtin=BUILTIN_PACKS)


def compile_packs(packs: Iterable[tuple[str, Any, bool]]) -> Catalogue:
    """The catalogue of parsed packs `(file, document, built in)`, in order. PackError."""
    rules: list[Rule] = []
    types: dict[str, TypeSpec] = {}
    fallback_types: dict[tuple[Source, str], str] = {}
    names: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    for file, document, builtin in packs:
        _check_schema(file, document)
        pack = document["pack"]
        if not builtin and pack in BUILTIN_PACKS:
            raise PackError(file, None, f"pack {pack!r} is the name of a built-in pack")
        if pack in names:
            raise PackError(file, None, f"pack {pack!r} is also {names[pack]}")
        names[pack] = file
        prefix = document["type_prefix"]
        if not builtin and prefix in RESERVED_PREFIXES:
            raise PackError(file, None, f"type_prefix {prefix!r} belongs to a built-in pack")
        if prefix in prefixes:
            raise PackError(file, None, f"type_prefix {prefix!r} is also {prefixes[prefix]}'s")
        prefixes[prefix] = file
        pack_types = _types(file, document, prefix)
        types.update(pack_types)
        for s, source_doc in enumerate(document["sources"]):
            source = _source(file, pack, source_doc, s)
            for reason, name in source_doc.get("fallbacks", {}).items():
                if name not in pack_types:
                    raise PackError(
                        file, None, f"fallback of {reason}: type {name!r} is not declared"
                    )
                fallback_types[source, reason] = name
            for i, rule_doc in enumerate(source_doc["rules"]):
                rules.append(_rule(file, pack, source, rule_doc, s=s, i=i, types=pack_types))
    try:
        return Catalogue(
            rules=tuple(rules), types=types, fallback_types=fallback_types, packs=tuple(names)
        )
    except ValueError as e:
        raise PackError(", ".join(names.values()), None, str(e)) from e


def _check_schema(file: str, document: Any) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    path = list(error.absolute_path)
    rule = None
    if len(path) >= 4 and path[0] == "sources" and path[2] == "rules" and isinstance(path[3], int):
        rule_doc = document["sources"][path[1]]["rules"][path[3]]
        rule = _rule_name(rule_doc, path[1], path[3])
    at = "/".join(str(p) for p in path) or "(top)"
    raise PackError(file, rule, f"at {at}: {error.message}")


def _rule_name(rule_doc: Any, s: int, i: int) -> str:
    name = rule_doc.get("name") if isinstance(rule_doc, dict) else None
    return f"{name!r} (sources[{s}].rules[{i}])" if name else f"sources[{s}].rules[{i}]"


def _types(file: str, document: Mapping[str, Any], prefix: str) -> dict[str, TypeSpec]:
    types = {}
    for name, spec in document["types"].items():
        if not name.startswith(prefix):
            raise PackError(file, None, f"type {name!r} does not start with {prefix!r}")
        common = sorted(COMMON_FIELDS & set(spec["fields"]))
        if common:
            raise PackError(file, None, f"type {name!r}: fields {common} are common fields")
        for field, spec_field in spec["fields"].items():
            mismatch = "when_null" in spec_field and _type_mismatch(
                spec_field["when_null"], spec_field
            )
            if mismatch:
                raise PackError(file, None, f"type {name!r}: field {field}: when_null {mismatch}")
        when_null = {
            field: _event_converter(file, None, spec_field["when_null"])
            for field, spec_field in spec["fields"].items()
            if "when_null" in spec_field
        }
        types[name] = TypeSpec(
            pack=document["pack"],
            fields=spec["fields"],
            description=spec.get("description", ""),
            when_null=when_null,
        )
    return types


def _source(file: str, pack: str, doc: Mapping[str, Any], s: int) -> Source:
    common = sorted(COMMON_FIELDS & set(doc.get("fields", {})))
    if common:
        raise PackError(file, None, f"sources[{s}]: fields {common} are common fields")
    return Source(
        pack=pack,
        group=doc.get("group"),
        kind=doc["kind"],
        components=tuple(doc["components"]),
        fields={k: _event_converter(file, None, v) for k, v in doc.get("fields", {}).items()},
        field_specs=doc.get("fields", {}),
        stateful=any("state" in r for r in doc["rules"]),
        owner_kinds=frozenset(doc["owner_kinds"]) if "owner_kinds" in doc else None,
    )


def _event_converter(file: str, rule: str | None, spec: Mapping[str, Any]) -> Converter:
    convert, _ = _compiled(file, rule, spec)
    return convert


def _compiled(file: str, rule: str | None, spec: Mapping[str, Any]) -> tuple[Converter, set[str]]:
    try:
        return compile_field(spec)
    except ValueError as e:
        raise PackError(file, rule, str(e)) from e


def _rule(
    file: str,
    pack: str,
    source: Source,
    doc: Mapping[str, Any],
    *,
    s: int,
    i: int,
    types: Mapping[str, TypeSpec],
) -> Rule:
    where = _rule_name(doc, s, i)
    try:
        pattern = re.compile(doc["message"], re.DOTALL)
    except re.error as e:
        raise PackError(file, where, f"message is not a regular expression: {e}") from e
    emits = doc.get("emits")
    fields = doc.get("fields", {})
    if emits is None:
        if fields or "state" in doc:
            raise PackError(file, where, "a rule that emits nothing has no fields and no state")
        converters: dict[str, Converter] = {}
    else:
        if emits not in types:
            raise PackError(file, where, f"emits {emits!r}, a type the pack does not declare")
        declared = types[emits].fields
        unknown = sorted(set(fields) - set(declared))
        if unknown:
            raise PackError(file, where, f"fields {unknown} are not fields of {emits}")
        shadowed = sorted(set(source.field_specs) & set(declared))
        if shadowed:
            raise PackError(
                file, where, f"fields {shadowed} of {emits} are also fields of its source"
            )
        converters = dict.fromkeys(declared, _null)
        for name, spec in fields.items():
            mismatch = _type_mismatch(spec, declared[name])
            if mismatch:
                raise PackError(file, where, f"field {name}: {mismatch}")
            convert, groups = _compiled(file, where, spec)
            missing = sorted(groups - set(pattern.groupindex))
            if missing:
                raise PackError(
                    file, where, f"field {name} reads groups {missing} the message lacks"
                )
            converters[name] = convert
    if doc.get("understood", True) is False and any(
        Kind(k) in OF_THE_MATCH
        for spec in fields.values()
        for k in spec
        if k in Kind.__members__.values()
    ):
        raise PackError(
            file, where, "a flagged rule (understood: false) reads nothing of the message"
        )
    return Rule(
        source,
        doc["reason"],
        pattern,
        emits,
        converters,
        name=f"{pack}/{doc.get('name') or f'sources[{s}].rules[{i}]'}",
        effect=Effect(doc.get("state", Effect.NONE)),
        understood=doc.get("understood", True),
        event_type=doc.get("event_type"),
    )


def _null(_found: object, _event: object) -> None:
    return None


def _gives(spec: Mapping[str, Any]) -> set[str]:
    """The declared field types (`string`, `integer`, `boolean`, `list`) a converter can give
    besides null."""
    first = spec.get("first") is True
    if "const" in spec or "component" in spec:
        values = [spec["const"]] if "const" in spec else list(spec["component"].values())
        return {_json_type(v) for v in values if v is not None}
    if "int" in spec:
        return {"integer"}
    if "flag" in spec:
        return {"boolean"}
    if "list" in spec or "display_revisions" in spec:
        return {"string"} if first else {"list"}
    return {"string"}  # string, text, message, annotation, field_path


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, list):
        return "list"
    return "string" if isinstance(value, str) else type(value).__name__


def _type_mismatch(spec: Mapping[str, Any], declared: Mapping[str, Any]) -> str | None:
    """Why a converter cannot fill a field of the declared type, if it cannot: the events would
    break their own published schema."""
    wanted = declared.get("type")
    given = _gives(spec)
    wrong = sorted(given - {wanted})
    if wrong:
        return f"declared {wanted}, but its converter gives {', '.join(wrong)}"
    enum = declared.get("enum")
    if enum is not None and "const" in spec and spec["const"] not in enum:
        return f"the constant {spec['const']!r} is not one of {enum}"
    return None

"""The published JSON Schemas, derived from the rule packs: one per domain event type. Pure.

Each type a pack declares gets `data/<type>.v1.schema.json`, its `$id` the type's `dataschema`
(`herald_contracts.data_schema_uri`): the common fields (`common.v1.schema.json`, hand-written: they
are the interpreter's, not a pack's), then the type's catalogue fields in the shape the pack declares,
each also nullable when the message was not understood. A field is required unless the pack marks it
`required: false` (added to the type later: events written before lack it); the fields a source gives
every event (Argo CD's `dest_server`, `dest_namespace`) are required too. `python -m processors rules
schemas OUT` writes them; a test keeps the built-in packs' files in `schemas/` equal to what is
derived, so the published schemas never drift from the rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from herald_contracts import EVENT_TYPE_PREFIX, data_schema_uri
from processors.catalogue import Catalogue, TypeSpec

JSON_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
COMMON_FIELDS_IN_SCHEMA = frozenset({"dest_server", "dest_namespace"})
"""Source fields whose shape `common.v1.schema.json` already gives."""

_DESCRIPTION = (
    "The data of a {type} event: the common fields (common.v1.schema.json), then the catalogue"
    " fields of the type (docs/contracts.md, the catalogue). Each catalogue field has the type given"
    " under `else` when the message was understood; when it was not"
    " (`source_message_understood: false`), each may also be null (`then`)."
)


def data_schemas(catalogue: Catalogue, *, packs: tuple[str, ...] | None = None) -> dict[str, str]:
    """`data/<type>.v1.schema.json` -> its text (2-space JSON, a final newline), for every type of
    the named packs (None: all the catalogue's)."""
    return {
        f"data/{name}.v1.schema.json": json.dumps(data_schema(catalogue, name), indent=2) + "\n"
        for name, spec in sorted(catalogue.types.items())
        if packs is None or spec.pack in packs
    }


def data_schema(catalogue: Catalogue, name: str) -> dict[str, Any]:
    spec = catalogue.types[name]
    source_fields = _source_fields(catalogue, name)
    ordered = [f for f, d in spec.fields.items() if d.get("required", True)] + [
        f for f, d in spec.fields.items() if not d.get("required", True)
    ]
    understood = {f: field_shape(spec.fields[f]) for f in ordered}
    schema: dict[str, Any] = {
        "$schema": JSON_SCHEMA,
        "$id": data_schema_uri(name),
        "title": f"data of {EVENT_TYPE_PREFIX}{name}",
        "description": _DESCRIPTION.format(type=EVENT_TYPE_PREFIX + name),
        "type": "object",
        "allOf": [{"$ref": "common.v1.schema.json"}],
    }
    if understood:
        schema["allOf"].append(
            {
                "if": {
                    "properties": {"source_message_understood": {"const": False}},
                    "required": ["source_message_understood"],
                },
                "then": {
                    "properties": {
                        f: {"anyOf": [{"type": "null"}, shape]} for f, shape in understood.items()
                    }
                },
                "else": {"properties": understood},
            }
        )
    extra = {f: s for f, s in source_fields.items() if f not in COMMON_FIELDS_IN_SCHEMA}
    if extra:
        schema["properties"] = extra
    schema["required"] = sorted(
        f for f, d in spec.fields.items() if d.get("required", True)
    ) + list(source_fields)
    return schema


def field_shape(declared: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a field as a pack declares it (`type`, `nullable`, `enum`, `items`)."""
    nullable = bool(declared.get("nullable", False))
    if "enum" in declared:
        return {"enum": [*declared["enum"], None] if nullable else list(declared["enum"])}
    kind = {"string": "string", "integer": "integer", "boolean": "boolean", "list": "array"}[
        declared["type"]
    ]
    shape: dict[str, Any] = {"type": [kind, "null"] if nullable else kind}
    if kind == "array":
        items = declared.get("items", "string")
        shape["items"] = {"type": ["string", "null"] if items == "string-or-null" else "string"}
    return shape


def _source_fields(catalogue: Catalogue, name: str) -> dict[str, dict[str, Any]]:
    """The fields the sources of a type's rules give every event, with their shapes."""
    fields: dict[str, dict[str, Any]] = {}
    for rule in catalogue.rules:
        if rule.catalogue_name != name:
            continue
        for field, spec in rule.source.field_specs.items():
            if "const" in spec:
                fields.setdefault(field, {"const": spec["const"]})
            else:  # an annotation, or a value by component: text or null
                fields.setdefault(field, {"type": ["string", "null"]})
    return fields


def type_summary(spec: TypeSpec, name: str) -> str:
    """`dev.herald.<type>  <dataschema>`, as `rules check` lists it."""
    return f"{EVENT_TYPE_PREFIX}{name}  {data_schema_uri(name)}"


def with_types(envelope: Mapping[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """The domain event envelope (`schemas/deploy-event.v1.schema.json`) with its list of types and
    its per-type `dataschema` and `data` conditions derived from the catalogue's types: the
    published envelope is this of the built-in packs (a test keeps it so), and `rules schemas OUT
    DIR` writes one that also knows a user's types."""
    names = sorted(catalogue.types)
    derived = dict(envelope)
    derived["properties"] = {
        **envelope["properties"],
        "type": {"enum": [EVENT_TYPE_PREFIX + n for n in names]},
    }
    derived["allOf"] = [
        {
            "if": {"properties": {"type": {"const": EVENT_TYPE_PREFIX + n}}},
            "then": {
                "properties": {
                    "dataschema": {"const": data_schema_uri(n)},
                    "data": {"$ref": f"data/{n}.v1.schema.json"},
                }
            },
        }
        for n in names
    ]
    return derived

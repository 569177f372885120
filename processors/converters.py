"""The closed set of field converters a rule pack may name: how a domain event field is read. Pure.

A pack stays data: a field is `{<converter>: <argument>, <option>: ...}` (docs/catalogue.md, "Field
converters"), compiled once at load into a function of the pattern's match and the Event. What a
regular expression alone cannot say (Argo CD's display revisions) is one converter here, named and
tested, never code in a pack. Converters of the match:

- `string: <group>`: the group as matched (`""` stays `""`), null when the group took no part;
- `text: <group>`: the group, null when absent or empty;
- `int: <group>`: the group as an integer (at most `MAX_DIGITS` digits, else `FieldError`), null
  when absent; a group that holds no integer (ASCII digits) makes the rule not match after all;
- `flag: <group>`: true when the group matched something, else false;
- `list: <group>`, `separator: <text or null>`: the group split by the separator (null: by
  whitespace), each part stripped, empty parts dropped; an absent group is `[]`;
- `display_revisions: <group>`, `part: resolved | target`: argocd-server's display revision (see
  `display_revisions`); when the group does not read as one, the rule does not match after all;
- `message: true`: the whole message matched (after the aggregation prefix).

Converters of the Event (usable anywhere, also in `when_null` and a source's `fields`):

- `const: <value>`: the value (any JSON);
- `annotation: <key>`: the Event's annotation, null when absent, not a string or over `MAX_TEXT`;
- `component: {<component>: <value>, ...}`: the value for the Event's emitting component, else null;
- `field_path: container`: the container the Event's `involvedObject.fieldPath` names
  (`spec.containers{<name>}`, also `initContainers` and `ephemeralContainers`, as the kubelet
  writes it), else null.

`list` and `display_revisions` take `first: true` to give their first item (null for none).
"""

from __future__ import annotations

import copy
import enum
import re
from collections.abc import Callable, Mapping
from typing import Any

from herald_contracts import view_event

MAX_DIGITS = 18
"""Longest number a field takes: it stays below 2**63 (a Postgres bigint, a Java long)."""
MAX_TEXT = 4096
"""Longest text an annotation may be to be carried (an identifier cut would be a wrong one)."""

JsonObject = dict[str, Any]
Converter = Callable[[re.Match[str] | None, Mapping[str, Any]], Any]
"""A compiled field: (the pattern's match, or None outside a rule; the Event) -> the value."""


class Kind(enum.StrEnum):
    """The converters, by the key that names them in a pack."""

    STRING = "string"
    TEXT = "text"
    INT = "int"
    FLAG = "flag"
    LIST = "list"
    DISPLAY_REVISIONS = "display_revisions"
    MESSAGE = "message"
    CONST = "const"
    ANNOTATION = "annotation"
    COMPONENT = "component"
    FIELD_PATH = "field_path"


OF_THE_MATCH = frozenset(
    {Kind.STRING, Kind.TEXT, Kind.INT, Kind.FLAG, Kind.LIST, Kind.DISPLAY_REVISIONS, Kind.MESSAGE}
)
"""Converters that read the pattern's match: only in a rule's `fields`."""


class FieldError(ValueError):
    """A message matched a row but one of its fields cannot be carried (a number too large)."""


class NotThisRule(Exception):
    """The pattern matched, but a converter says the text is not this rule's after all."""


def compile_field(spec: Mapping[str, Any]) -> tuple[Converter, set[str]]:  # noqa: PLR0911 - one return per converter of the closed set
    """The converter of one field spec (validated by the pack schema: one converter key) and the
    pattern groups it reads. ValueError for an option that does not fit its converter."""
    kind = next(Kind(k) for k in spec if k in Kind.__members__.values())
    argument = spec[kind]
    first = bool(spec.get("first", False))
    if first and kind not in (Kind.LIST, Kind.DISPLAY_REVISIONS):
        raise ValueError(f"`first` applies to `list` and `display_revisions`, not `{kind}`")
    group = str(argument)
    if kind is Kind.STRING:
        return (lambda m, _e: _group(m, group)), {group}
    if kind is Kind.TEXT:
        return (lambda m, _e: _group(m, group) or None), {group}
    if kind is Kind.INT:
        return (lambda m, _e: integer(_group(m, group), group)), {group}
    if kind is Kind.FLAG:
        return (lambda m, _e: bool(_group(m, group))), {group}
    if kind is Kind.LIST:
        separator = spec.get("separator")
        return _firsting(lambda m, _e: split(_group(m, group) or "", separator), first=first), {
            group
        }
    if kind is Kind.DISPLAY_REVISIONS:
        index = {"resolved": 1, "target": 0}[spec.get("part", "resolved")]

        def revisions(m: re.Match[str] | None, _e: Mapping[str, Any]) -> list[str | None]:
            sources = display_revisions((_group(m, group) or "").rstrip())
            if sources is None:
                raise NotThisRule
            return [source[index] for source in sources]

        return _firsting(revisions, first=first), {group}
    if kind is Kind.MESSAGE:
        return (lambda m, _e: m[0] if m is not None else None), set()
    if kind is Kind.CONST:
        if isinstance(argument, list | dict):  # a fresh copy each time: events never share one
            return (lambda _m, _e: copy.deepcopy(argument)), set()
        return (lambda _m, _e: argument), set()
    if kind is Kind.ANNOTATION:
        return (lambda _m, e: annotation(e, group)), set()
    if kind is Kind.FIELD_PATH:
        return _field_path(argument), set()
    values = dict(argument)
    return (lambda _m, e: values.get(view_event(e).component or "")), set()


def _field_path(part: object) -> Converter:
    if part != "container":
        raise ValueError(f"`field_path` reads `container`, not {part!r}")
    return lambda _m, e: field_path_container(e)


def _group(found: re.Match[str] | None, group: str) -> str | None:
    return None if found is None else found[group]


def _firsting(convert: Converter, *, first: bool) -> Converter:
    if not first:
        return convert

    def first_item(m: re.Match[str] | None, e: Mapping[str, Any]) -> Any:
        items = convert(m, e)
        return items[0] if items else None

    return first_item


_DIGITS = re.compile(r"-?[0-9]+")
"""An integer as Herald reads one: ASCII digits (Python's `\\d` and `int` take any script's)."""


def integer(value: str | None, group: str) -> int | None:
    """The group as an integer; NotThisRule when it holds no integer of ASCII digits (the pattern
    was looser than the field: the rule does not match, and the reason's fallback flags the
    event), FieldError when it has more than `MAX_DIGITS` digits."""
    if value is None:
        return None
    if _DIGITS.fullmatch(value) is None:
        raise NotThisRule(f"{group}: {value[:40]!r} is not an integer")
    if len(value.lstrip("-")) > MAX_DIGITS:
        raise FieldError(f"{group}: a number of {len(value)} digits (at most {MAX_DIGITS})")
    return int(value)


def split(value: str, separator: str | None) -> list[str]:
    return [r.strip() for r in value.split(separator) if r.strip()]


def annotation(event: Mapping[str, Any], key: str) -> str | None:
    metadata = event.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    value = annotations.get(key) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) and len(value) <= MAX_TEXT else None


_CONTAINER_PATH = re.compile(r"spec\.(?:initC|ephemeralC|c)ontainers\{(?P<name>[^{}]+)\}")
"""The kubelet's field path of a container (`pkg/kubelet/container/ref.go` `fieldPath`)."""


def field_path_container(event: Mapping[str, Any]) -> str | None:
    """The container named by the Event's `involvedObject.fieldPath`, else None."""
    involved = event.get("involvedObject")
    path = involved.get("fieldPath") if isinstance(involved, dict) else None
    if not isinstance(path, str) or len(path) > MAX_TEXT:
        return None
    found = _CONTAINER_PATH.fullmatch(path)
    return found["name"] if found is not None else None


MAX_PART_COMMAS = 16
"""Most commas one source's display holds (a Helm constraint such as `>=1.0.0, <2.0.0`)."""
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
    where what follows reads as sources too, the shortest such part first. A part spans at most
    `MAX_PART_COMMAS` commas of its own.

    Linear in the number of parts (each suffix is judged once, from the end), so no display, however
    many sources it names or however it fails to read, holds the processor: trying every split
    took time doubling with each part."""
    pieces = display.split(",")
    n = len(pieces)
    # read[i]: how the pieces from i on read, as (the first source, where the rest starts); the
    # end reads as nothing; None: they do not read as sources.
    read: list[tuple[tuple[str | None, str], int] | None] = [None] * n
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, min(n, i + MAX_PART_COMMAS + 1) + 1):
            if j < n and read[j] is None:
                continue
            found = _source(",".join(pieces[i:j]))
            if found is not None:
                read[i] = (found, j)
                break
    sources: list[tuple[str | None, str]] = []
    i = 0
    while i < n:
        step = read[i]  # set only where the rest reads too
        if step is None:
            return None
        sources.append(step[0])
        i = step[1]
    return sources


def _source(part: str) -> tuple[str | None, str] | None:
    resolved = _RESOLVED.fullmatch(part)
    if resolved is not None:
        return resolved["target"].strip() or None, resolved["resolved"]
    if _BARE.fullmatch(part):
        return part, part
    return None

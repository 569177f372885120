"""`rules test` and the `int` converter on inputs a user will write (found by the review of issue
12)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from herald_contracts import RawRecord, WatchType
from processors.interpreting import interpret
from processors.packs import load_catalogue
from processors.rule_commands import main as rules

PACK = r"""
pack: review
type_prefix: review.
types:
  review.requested:
    fields:
      revision: {type: integer}
sources:
  - group: cert-manager.io
    kind: Certificate
    components: [cert-manager-certificates-request-manager]
    rules:
      - name: requested
        reason: Requested
        message: 'Created new CertificateRequest resource "(?P<name>[^"]+)-(?P<revision>[^"-]+)"'
        emits: review.requested
        fields:
          revision: {int: revision}
"""


def _event(message: str) -> dict[str, object]:
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": "web.1",
            "namespace": "default",
            "uid": "8f0c1d2e-0000-4000-8000-000000000001",
            "resourceVersion": "1",
            "creationTimestamp": "2026-11-30T09:00:00Z",
        },
        "involvedObject": {
            "kind": "Certificate",
            "namespace": "default",
            "name": "web",
            "uid": "8f0c1d2e-0000-4000-8000-000000000002",
            "apiVersion": "cert-manager.io/v1",
        },
        "reason": "Requested",
        "message": message,
        "source": {"component": "cert-manager-certificates-request-manager"},
        "firstTimestamp": "2026-11-30T09:00:00Z",
        "lastTimestamp": "2026-11-30T09:00:00Z",
        "count": 1,
        "type": "Normal",
    }


def test_an_int_field_whose_group_holds_no_number_is_not_a_bug_of_the_processor(
    tmp_path: Path,
) -> None:
    # `{int: g}` over a group that matched `abc`: int() raises a bare ValueError, which the
    # processor sets aside as a bug of its own (logged with a traceback) and `rules test` dies on.
    # Expected: the rule does not match (the reason's fallback, flagged) or a FieldError naming
    # the field, as for a number of more than 18 digits.
    (tmp_path / "review.yaml").write_text(PACK)
    catalogue = load_catalogue(builtin=(), directory=tmp_path)
    record = RawRecord(
        cluster="c1",
        watch_type=WatchType.ADDED,
        collected_at="2026-11-30T09:00:00Z",
        object=_event('Created new CertificateRequest resource "web-abc"'),
    )
    outcome = interpret(record, last_n=None, catalogue=catalogue)
    assert outcome.refused is None
    [event] = outcome.events  # the reason's fallback: flagged, its fields null
    assert (event.data["source_message_understood"], event.data["revision"]) == (False, None)


def test_rules_test_reports_a_line_it_cannot_read_and_goes_on_to_the_next(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "review.yaml").write_text(PACK)
    first = _event('Created new CertificateRequest resource "web-3"')
    first["_watch_type"] = "BOOKMARK"
    second = _event('Created new CertificateRequest resource "web-4"')
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    out = io.StringIO()
    rules(["--packs", "none", "test", str(packs), str(events)], out=out)
    assert f"{events}:2: rule review/requested" in out.getvalue()

"""Rule packs that would give events breaking their own schemas, hide what the collector resolved,
or hold the processor on one message (found by the review of issue 12): refused at load, or read in
linear time. The time bounds guard against a hang (quadratic or exponential work takes seconds to
hours here); they are not speed measurements (bench/ is)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from processors.converters import display_revisions
from processors.packs import PackError, known_catalogue, load_catalogue

PACK = r"""
pack: review
type_prefix: review.
types:
  review.thing_happened:
    fields:
      count: {type: integer}
      target: {type: string}
sources:
  - kind: Thing
    components: [thing-controller]
    rules:
      - name: happened
        reason: Happened
        message: '(?P<target>\S+) happened (?P<n>\d+) times'
        emits: review.thing_happened
        fields:
          count: {int: n}
          target: {string: target}
"""


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        pytest.param(
            "count: {int: n}", "count: {const: one}", "count", id="a-text-const-in-an-integer"
        ),
        pytest.param(
            "target: {string: target}", "target: {int: n}", "target", id="an-int-in-a-string"
        ),
        pytest.param("count: {int: n}", "count: {flag: n}", "count", id="a-flag-in-an-integer"),
        pytest.param(
            "target: {string: target}", "target: {list: target}", "target", id="a-list-in-a-string"
        ),
    ],
)
def test_a_pack_whose_field_converter_cannot_give_the_type_it_declares_is_refused(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    # docs/catalogue.md: "Field types, which the published schemas are derived from". A rule that
    # fills an `integer` field with text gives events that break their own published dataschema.
    (tmp_path / "review.yaml").write_text(PACK.replace(old, new))
    with pytest.raises(PackError) as refused:
        load_catalogue(builtin=(), directory=tmp_path)
    assert field in refused.value.reason


@pytest.mark.parametrize("common", ["workload", "application"])
def test_a_pack_cannot_declare_a_field_that_hides_a_common_field(
    tmp_path: Path, common: str
) -> None:
    # `workload` and `application` are common fields (docs/contracts.md), filled from what the
    # collector resolved; a pack's source field (e.g. {annotation: app}, which anyone who can
    # create an Event controls) or type field of that name replaces them with anything.
    as_source = PACK.replace(
        "    rules:\n", f"    fields:\n      {common}: {{annotation: x}}\n    rules:\n", 1
    )
    (tmp_path / "review.yaml").write_text(as_source)
    with pytest.raises(PackError, match="common"):
        load_catalogue(builtin=(), directory=tmp_path)
    as_type = PACK.replace(
        "      target: {type: string}\n",
        f"      target: {{type: string}}\n      {common}: {{type: string, nullable: true}}\n",
        1,
    )
    (tmp_path / "review.yaml").write_text(as_type)
    with pytest.raises(PackError, match="common"):
        load_catalogue(builtin=(), directory=tmp_path)


def test_a_source_field_and_a_type_field_of_one_name_are_refused(tmp_path: Path) -> None:
    # The derived schema takes the source's declaration; the event carries the rule's value.
    pack = PACK.replace(
        "    rules:\n", "    fields:\n      target: {const: fixed}\n    rules:\n", 1
    )
    (tmp_path / "review.yaml").write_text(pack)
    with pytest.raises(PackError):
        load_catalogue(builtin=(), directory=tmp_path)


def test_an_argocd_display_revision_of_many_sources_that_does_not_read_is_judged_quickly() -> None:
    # `<user> initiated sync to <display>` with 22 `<target> (<sha>)` parts and a last part that
    # does not read: display_revisions backtracks over every split (2^n), and the four converters
    # of argo-cd/user-sync each call it: one such Event holds a processor's loop for hours, and the
    # loop-stall watchdog restarts it onto the same record.
    display = ",".join(["main (abc)"] * 22) + ",x"
    started = time.monotonic()
    assert display_revisions(display) is None
    assert time.monotonic() - started < 1.0


def test_an_argocd_display_revision_of_thousands_of_sources_does_not_overflow_the_stack() -> None:
    display = ",".join(["main (abc)"] * 3000)
    sources = display_revisions(display)
    assert sources is not None
    assert len(sources) == 3000


def test_a_kubelet_failed_message_of_64_kib_is_matched_in_linear_time() -> None:
    # kubernetes/pull-failed-unknown-words is `(?i).*\bpull.*\bimage\b.*`: quadratic on a message
    # of many `pull` words and no `image` (about 7 s for 64 KiB, the collector's default cap).
    rule = next(
        r for r in known_catalogue().rules if r.name == "kubernetes/pull-failed-unknown-words"
    )
    message = "pull " * (65536 // 5)
    started = time.monotonic()
    rule.pattern.fullmatch(message)
    assert time.monotonic() - started < 0.5


ADVERSARIAL = {
    "words": "pull image probe Killed process sync to main (abc), " * 1300,
    "one letter": "a" * 65536,
    "digits": "1" * 65536,
    "lines": ("x" * 99 + "\n") * 655,
    "commas": "a, " * 21845,
    "parentheses": "(" * 32768 + ")" * 32768,
}


@pytest.mark.parametrize("text", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_every_built_in_pattern_reads_64_kib_without_backtracking_for_long(text: str) -> None:
    """A hang guard, not a speed measurement: a quadratic pattern takes seconds here."""
    slowest = (0.0, "")
    for rule in known_catalogue().rules:
        started = time.monotonic()
        rule.pattern.fullmatch(text)
        slowest = max(slowest, (time.monotonic() - started, rule.name))
    assert slowest[0] < 0.5, slowest

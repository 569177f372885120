"""The alerting rules fire when they should, as Prometheus' own rule engine says: `promtool check
rules` accepts the file, and `promtool test rules` runs, for each alert, series that fire it and
series that do not (tests/prometheus/herald-alerts.test.yaml, a file promtool runs as it is, each
expected alert written out with its severity and annotations). Each alert links to the section of
docs/runbook.md that says what to do."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald_dev.promtool import find_promtool

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "deploy" / "helm" / "herald" / "files" / "herald-alerts.yaml"
CASES = ROOT / "tests" / "prometheus" / "herald-alerts.test.yaml"
RUNBOOK = ROOT / "docs" / "runbook.md"


@pytest.fixture(scope="module")
def promtool() -> Path:
    found = find_promtool()
    if found is None:
        pytest.fail("promtool not found: deploy/local/setup.sh fetches it")
    return found


@cache
def _rules() -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


@cache
def _cases() -> dict[str, Any]:
    cases: dict[str, Any] = yaml.safe_load(CASES.read_text())
    return cases


def _ids(group: dict[str, Any]) -> str:
    return str(group["name"])


def test_the_rules_file_passes_promtool_check_rules(promtool: Path) -> None:
    checked = subprocess.run(
        [promtool, "check", "rules", ALERTS], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in checked.stdout


def test_the_cases_file_passes_promtool_test_rules_as_it_is(promtool: Path) -> None:
    """What docs/operating.md tells operators to run, from the repository's root."""
    ran = subprocess.run(
        [promtool, "test", "rules", CASES.relative_to(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (CASES.parent / _cases()["rule_files"][0]).resolve() == ALERTS


@pytest.mark.parametrize("group", _cases()["tests"], ids=_ids)
def test_the_alerts_fire_as_the_promtool_case_says(
    group: dict[str, Any], promtool: Path, tmp_path: Path
) -> None:
    """Each group of the file on its own, so that a failure names its case."""
    case = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": _cases()["evaluation_interval"],
        "tests": [group],
    }
    path = tmp_path / "case.test.yaml"
    path.write_text(yaml.safe_dump(case, sort_keys=False, width=1000))
    ran = subprocess.run(
        [promtool, "test", "rules", path], capture_output=True, text=True, check=False
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not() -> None:
    fired: set[str] = set()
    quiet: set[str] = set()
    for group in _cases()["tests"]:
        for check in group["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert set(_rules()) - fired == set(), "never shown firing"
    assert set(_rules()) - quiet == set(), "never shown quiet"


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, punctuation other than `-`
    and `_` dropped, spaces as `-`; a repeated one gets `-1`, `-2`... Fenced code is skipped."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or heading is None:
            continue
        anchor = re.sub(r"[^\w\- ]", "", heading.group(1).lower()).replace(" ", "-")
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
    return anchors


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("HeraldClusterUnreachable", "heraldclusterunreachable"),
        ("Scrape jobs: which `job` the rules assume", "scrape-jobs-which-job-the-rules-assume"),
        ("Lag (raw topic) & stalls", "lag-raw-topic--stalls"),
    ],
)
def test_anchors_follow_githubs_rules(heading: str, anchor: str) -> None:
    assert anchor in github_anchors(f"# Title\n\n## {heading}\n")


@pytest.mark.parametrize("rule", list(_rules().values()), ids=lambda r: r["alert"])
def test_each_alert_links_to_its_runbook_section(rule: dict[str, Any]) -> None:
    url = rule["annotations"]["runbook_url"]
    path, _, anchor = url.partition("#")
    assert (ROOT / path).resolve() == RUNBOOK, url
    assert anchor == rule["alert"].lower(), "one section per alert, named after it"
    assert anchor in github_anchors(RUNBOOK.read_text()), f"docs/runbook.md has no #{anchor}"


def test_the_runbooks_links_to_other_sections_lead_somewhere() -> None:
    links = re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", RUNBOOK.read_text())
    assert links
    for path, anchor in links:
        target = RUNBOOK.parent / path if path else RUNBOOK
        assert anchor in github_anchors(target.read_text()), f"{path}#{anchor}"

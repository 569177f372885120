"""The dashboard passes the rules of Grafana's dashboard-linter that matter, named as the linter names
them (github.com/grafana/dashboard-linter, docs/rules/): the Go linter itself cannot be installed here
(the Go module proxy refuses it), so its rules are checked by these tests, and PromQL is parsed by
promtool.

Rules left out, and why (the linter's `.lint` exclusions would say the same):
- template-instance-rule, target-instance-rule: the panels sum over replicas (a partition's lag is
  reported by whichever worker holds it, breakers are per process): an instance filter would show
  partial sums. `job`, `namespace` and `release` narrow the dashboard to one Herald.
- target-counter-agg-rule, uneditable and refresh-interval rules: not about what the issue fixes.

Herald's own additions: the unit matches what the query gives (seconds in a time unit, per-second
rates in a rate unit, counts in neither: a panel of counts shown in seconds, or seconds shown as
counts, is refused), and an `increase()` over a fixed window says its window, `(1 h)`, in the legend
or the title (the linter allows fixed windows outside rate and irate).
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from herald_dev.promtool import find_promtool
from tests.test_observability import DASHBOARD, _exported

SELECTOR = re.compile(r"\b(herald_[a-z_]+)\b(?:\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
RANGE_FUNCTION = re.compile(r"\b(rate|irate|increase)\(([^()]*?)\[([^\]]+)\]\)")
LABEL_VALUES = re.compile(r"label_values\((.+),\s*(\w+)\s*\)")
TEMPLATED_DATASOURCE = {"$datasource", "${datasource}"}
REQUIRED_VARIABLES = ("job", "namespace", "release", "cluster")
"""template-job-rule, and template-required-variables-rule with namespace, release (two Herald
releases in one namespace are told apart, as the alerts group them) and cluster."""
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}

RATE_UNITS = {"ops", "reqps", "rps", "wps", "cps", "iops", "opm", "rpm"}
TIME_UNITS = {"ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations"}
COUNT_UNITS = {"short", "none", "locale"}


@cache
def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _targets() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in _panels() for t in p.get("targets", [])]


def _variables() -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in _dashboard()["templating"]["list"]}


def _target_params() -> list[Any]:
    return [pytest.param(p, t, id=f"{p['title']} {t['refId']}") for p, t in _targets()]


def _selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Each Herald series selector of a query, with its matchers (label -> operator, value)."""
    return [
        (name, {label: (op, value) for label, op, value in MATCHER.findall(matchers or "")})
        for name, matchers in SELECTOR.findall(expr)
    ]


def _uid(datasource: Any) -> str | None:
    return datasource.get("uid") if isinstance(datasource, dict) else datasource


# --- template rules --------------------------------------------------------------------------------


def test_template_datasource_rule() -> None:
    datasources = [v for v in _variables().values() if v["type"] == "datasource"]
    assert len(datasources) == 1
    (variable,) = datasources
    assert variable["query"] == "prometheus"
    assert variable["name"] == "datasource"
    assert variable["label"] == "Data source"


@pytest.mark.parametrize("name", REQUIRED_VARIABLES)
def test_template_job_rule_and_required_variables(name: str) -> None:
    variable = _variables().get(name)
    assert variable is not None, f"no {name} variable"
    assert variable["type"] == "query"
    assert _uid(variable["datasource"]) in TEMPLATED_DATASOURCE
    assert variable["label"] == name.title()
    assert variable["multi"] is True
    assert variable["includeAll"] is True
    # `release` is set by the chart's ServiceMonitor only: All must also match targets scraped
    # through the prometheus.io annotations, which have none.
    assert variable["allValue"] == (".*" if name == "release" else ".+")


def test_template_on_time_change_reload_rule() -> None:
    for variable in _variables().values():
        if variable["type"] == "query":
            assert variable["refresh"] == 2, f"{variable['name']} is not reloaded on time change"


def test_template_label_promql_rule(promtool: Path, tmp_path: Path) -> None:
    selectors = {}
    for name, variable in _variables().items():
        if variable["type"] == "query":
            query = LABEL_VALUES.fullmatch(variable["query"])
            assert query is not None, f"{name}: {variable['query']!r} is not label_values(...)"
            selectors[f"variable_{name}"] = query.group(1)
    _assert_parses(promtool, tmp_path, selectors)


# --- panel rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"])
def test_panel_datasource_rule(panel: dict[str, Any]) -> None:
    assert _uid(panel.get("datasource")) in TEMPLATED_DATASOURCE
    for target in panel.get("targets", []):
        assert _uid(target.get("datasource")) in TEMPLATED_DATASOURCE, target["refId"]


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"])
def test_panel_title_description_rule(panel: dict[str, Any]) -> None:
    assert panel.get("title")
    assert panel.get("description")


def _kind(expr: str) -> str:
    """What a query gives: seconds, a per-second rate or a count."""
    if "histogram_quantile(" in expr:
        assert all(name.endswith("_seconds_bucket") for name, _ in _selectors(expr)), expr
        return "seconds"
    if re.search(r"\b(rate|irate)\(", expr):
        return "per second"
    if "increase(" in expr or re.match(r"\s*count\(", expr):
        return "count"
    names = [name for name, _ in _selectors(expr)]
    # `_seconds` gauges, and herald_collector_seconds_since_contact; a timestamp is no duration.
    if any(re.search(r"_seconds(_|$)", n) and "_timestamp_" not in n for n in names):
        return "seconds"
    return "count"


@pytest.mark.parametrize(
    ("expr", "kind"),
    [
        ("histogram_quantile(0.99, sum by (le) (rate(herald_x_seconds_bucket[5m])))", "seconds"),
        ("sum(rate(herald_x_total[$__rate_interval]))", "per second"),
        ("sum(increase(herald_x_total[1h]))", "count"),
        ("max(herald_dispatcher_oldest_due_seconds)", "seconds"),
        ("max by (cluster) (herald_collector_seconds_since_contact)", "seconds"),
        ("count(min(herald_collector_last_contact_timestamp_seconds) == 0)", "count"),
        ("sum(herald_collector_clusters_watched)", "count"),
    ],
)
def test_what_a_query_gives_is_told_by_its_functions_and_metric_names(expr: str, kind: str) -> None:
    assert _kind(expr) == kind


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"])
def test_panel_units_rule(panel: dict[str, Any]) -> None:
    """A valid unit on every panel that plots numbers, and one that fits every query of it."""
    unit = panel["fieldConfig"]["defaults"].get("unit")
    assert unit in RATE_UNITS | TIME_UNITS | COUNT_UNITS, f"no or an unknown unit: {unit!r}"
    assert not panel["fieldConfig"].get("overrides"), "one unit per panel: split it instead"
    fitting = {"seconds": TIME_UNITS, "per second": RATE_UNITS, "count": COUNT_UNITS}
    for target in panel["targets"]:
        kind = _kind(target["expr"])
        assert unit in fitting[kind], f"{target['refId']} gives {kind}, shown in {unit!r}"


# --- target rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("panel", "target"), _target_params())
def test_target_job_rule_and_required_matchers(
    panel: dict[str, Any], target: dict[str, Any]
) -> None:
    """Every selector filters by `job=~"$job"`, `namespace=~"$namespace"` and
    `release=~"$release"`, and those of the
    collectors' per-cluster metrics by `cluster=~"$cluster"` (the others have no cluster)."""
    selectors = _selectors(target["expr"])
    assert selectors
    for name, matchers in selectors:
        wanted = ["job", "namespace", "release"]
        wanted += ["cluster"] if "cluster" in _exported()[name] else []
        for label in wanted:
            assert matchers.get(label) == ("=~", f"${label}"), f'{name} lacks {label}=~"${label}"'


@pytest.mark.parametrize(("panel", "target"), _target_params())
def test_target_rate_interval_rule(panel: dict[str, Any], target: dict[str, Any]) -> None:
    for function, _, window in RANGE_FUNCTION.findall(target["expr"]):
        if function in ("rate", "irate"):
            assert window == "$__rate_interval", f"{function} over [{window}]"
        else:  # increase over a fixed window: a count over the last hour, said so
            assert window != "$__rate_interval", "a count per scrape step means nothing"
            said = f"({window[:-1]} {window[-1]})"
            assert said in target.get("legendFormat", "") + panel["title"], f"say {said}"


def test_target_promql_rule(promtool: Path, tmp_path: Path) -> None:
    exprs = {
        f"panel_{panel['id']}_{target['refId']}": target["expr"] for panel, target in _targets()
    }
    _assert_parses(promtool, tmp_path, exprs)


# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> Path:
    found = find_promtool()
    if found is None:
        pytest.fail("promtool not found: deploy/local/setup.sh fetches it")
    return found


def _assert_parses(promtool: Path, tmp_path: Path, exprs: dict[str, str]) -> None:
    """Each expression, Grafana's variables replaced, parses as PromQL: promtool checks it as the
    expression of a recording rule."""
    rules = []
    for name, templated in exprs.items():
        expr = templated
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in re.sub(r'"(?:[^"\\]|\\.)*"', "", expr), f"{name}: a variable left"
        rules.append({"record": f"dashboard:{name}", "expr": expr})
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", path], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

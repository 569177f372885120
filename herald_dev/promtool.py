"""Find `promtool`, Prometheus' rule checker and rule unit-test runner, for the tests of the alerting
rules and the dashboard's queries (tests/test_alerts.py, tests/test_dashboard_lint.py).

It is looked for on the PATH, then in `${XDG_CACHE_HOME:-~/.cache}/herald/bin`, where
deploy/local/setup.sh extracts it from Debian's `prometheus` package when the PATH has none (no
Prometheus server is installed or started). `python -m herald_dev.promtool` prints its path.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path


def cache_bin(env: Mapping[str, str]) -> Path:
    """Where setup.sh puts the binaries it fetches, outside any clone (every clone shares them)."""
    cache = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(cache) / "herald" / "bin"


def find_promtool(env: Mapping[str, str] = os.environ) -> Path | None:
    """The promtool to run, or None when there is none (run deploy/local/setup.sh)."""
    on_path = shutil.which("promtool", path=env.get("PATH"))
    if on_path:
        return Path(on_path)
    cached = cache_bin(env) / "promtool"
    return cached if os.access(cached, os.X_OK) else None


if __name__ == "__main__":
    found = find_promtool()
    if found is None:
        sys.exit("promtool not found: run deploy/local/setup.sh")
    print(found)

"""Helm for the tests and the tools: find the binary, render the chart.

Herald's Kubernetes objects come from one source, the chart at `deploy/helm/herald`; the tests and
the real-cluster tier (`herald_dev.realkube`) read what `helm template` renders from it, never a
copy. Helm is built once by `deploy/local/setup.sh` (`go install` from the Go module proxy) into
`${XDG_CACHE_HOME:-~/.cache}/herald/bin/helm`, outside any clone; `HERALD_HELM` names another
binary. Nothing here installs anything: a missing Helm is an error that says how to get it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "deploy" / "helm" / "herald"
KUBERNETES_VERSION = "1.37.0"
"""The Kubernetes version the chart is rendered for (`--kube-version`): the real-cluster tier's
kube-apiserver minor (herald_dev.kubeassets) and the schemas the tests validate against."""
RELEASE = "herald"
NAMESPACE = "herald"


class HelmError(RuntimeError):
    """Helm is missing, or refused the chart or the values (its message names what)."""


def helm_binary(env: Mapping[str, str] | None = None) -> Path:
    """`HERALD_HELM`, else the cache `deploy/local/setup.sh` fills, else `helm` on PATH."""
    env = os.environ if env is None else env
    if given := env.get("HERALD_HELM", "").strip():
        return Path(given)
    cache = Path(env.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache")
    built = cache / "herald" / "bin" / "helm"
    if built.is_file() and os.access(built, os.X_OK):
        return built
    if found := shutil.which("helm", path=env.get("PATH")):
        return Path(found)
    raise HelmError(f"no helm at {built} nor on PATH: run `make setup` (deploy/local/setup.sh)")


def helm(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run helm with `args`; the completed process, whatever its exit code."""
    return subprocess.run(
        [str(helm_binary()), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )


def render(
    *,
    values_files: Sequence[Path] = (),
    set_values: Sequence[str] = (),
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    chart: Path = CHART,
) -> list[dict[str, Any]]:
    """The objects `helm template` renders (hooks included), in its order. HelmError with Helm's
    message when it refuses."""
    args = ["template", release, str(chart), "--namespace", namespace]
    args += ["--kube-version", KUBERNETES_VERSION]
    for path in values_files:
        args += ["--values", str(path)]
    for assignment in set_values:
        args += ["--set", assignment]
    done = helm(*args)
    if done.returncode != 0:
        raise HelmError(f"helm template: {done.stderr.strip()}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@functools.lru_cache(maxsize=1)
def default_objects() -> tuple[dict[str, Any], ...]:
    """The chart rendered with its default values, once per process."""
    return tuple(render())


def component(document: Mapping[str, Any]) -> str | None:
    """The chart's `app.kubernetes.io/component` label of an object: collector, processor,
    dispatcher, migrate, topics; None for the objects all share."""
    labels = document.get("metadata", {}).get("labels") or {}
    value = labels.get("app.kubernetes.io/component")
    return None if value is None else str(value)


def the_one(
    objects: Sequence[Mapping[str, Any]], kind: str, of: str | None = None
) -> dict[str, Any]:
    """The single object of `kind` (of component `of`, when given); LookupError if not exactly one."""
    found = [d for d in objects if d["kind"] == kind and (of is None or component(d) == of)]
    if len(found) != 1:
        raise LookupError(f"{len(found)} objects of kind {kind} for component {of}, not 1")
    return dict(found[0])

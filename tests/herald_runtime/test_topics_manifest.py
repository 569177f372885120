"""The Job that creates the topics in a cluster runs the topics command with settings it accepts,
every one documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from herald_runtime.topics.plan import Role, TopicSettings, herald_topics

ROOT = Path(__file__).resolve().parents[2]


def _container() -> dict[str, Any]:
    [job] = yaml.safe_load_all((ROOT / "deploy/kubernetes/topics.yaml").read_text())
    assert job["kind"] == "Job"
    [container] = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_job_runs_ensure_with_settings_the_command_accepts_and_the_docs_name() -> None:
    container = _container()
    assert container["command"] == ["python", "-m", "herald_runtime.topics", "ensure"]
    env = {e["name"]: e["value"] for e in container["env"]}
    documented = (ROOT / "docs/settings.md").read_text()
    for name in env:
        assert f"`{name}`" in documented, name
    specs = {s.role: s for s in herald_topics(TopicSettings.from_env(env))}
    assert specs[Role.RAW].replication_factor == 3
    assert specs[Role.CHECKPOINTS].config["min.insync.replicas"].value == "2"

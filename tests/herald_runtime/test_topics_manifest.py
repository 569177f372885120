"""The Job that creates the topics in a cluster (the Helm chart's hook, as `helm template` renders
it with the default values) runs the topics command with settings it accepts, every one
documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from herald_dev.helm import default_objects, the_one
from herald_runtime.topics.plan import Role, TopicSettings, herald_topics

ROOT = Path(__file__).resolve().parents[2]


def _container() -> dict[str, Any]:
    job = the_one(default_objects(), "Job", "topics")
    [container] = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def test_the_job_runs_ensure_with_settings_the_command_accepts_and_the_docs_name() -> None:
    container = _container()
    # An upgrade is not failed (and retried for ten minutes) over drift only a person may fix.
    assert container["command"] == [
        "python",
        "-m",
        "herald_runtime.topics",
        "ensure",
        "--unfixable",
        "warn",
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    documented = (ROOT / "docs/settings.md").read_text()
    for name in env:
        assert f"`{name}`" in documented, name
    specs = {s.role: s for s in herald_topics(TopicSettings.from_env(env))}
    assert specs[Role.RAW].replication_factor == 3
    assert specs[Role.CHECKPOINTS].config["min.insync.replicas"].value == "2"

"""What is shipped: the wheel holds every module of the services, and the container recipe copies
every package and is the image the Helm chart runs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from herald_dev.helm import CHART, default_objects

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ("herald_contracts", "herald_runtime", "collectors", "processors", "dispatchers")
DOCKERFILE = ROOT / "deploy" / "container" / "Dockerfile"


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Built from a copy of what the Dockerfile copies, so the working tree stays untouched."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in SHIPPED:
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("herald-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_every_module_migration_and_rule_pack(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*"):
            if (
                path.suffix in (".py", ".sql", ".typed", ".yaml", ".json")
                and "__pycache__" not in path.parts
            ):
                assert path.relative_to(ROOT).as_posix() in names


def test_the_wheel_installs_the_three_commands(wheel: zipfile.ZipFile) -> None:
    [entry_points] = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    text = wheel.read(entry_points).decode()
    for command, module in (
        ("herald-collector", "collectors"),
        ("herald-processor", "processors"),
        ("herald-dispatcher", "dispatchers"),
    ):
        assert f"{command} = {module}.__main__:main" in text


def test_the_container_recipe_copies_every_shipped_package() -> None:
    copied = set(re.findall(r"^COPY (\w+) \1$", DOCKERFILE.read_text(), flags=re.MULTILINE))
    assert copied == set(SHIPPED)


def test_the_container_python_satisfies_the_project() -> None:
    versions = re.findall(r"^FROM python:(\d+)\.(\d+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert versions
    minimum = tuple(int(p) for p in str(_project()["requires-python"]).lstrip(">=").split("."))
    assert all((int(major), int(minor)) >= minimum for major, minor in versions)


def test_the_chart_runs_the_image_of_this_version_as_its_user() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == _project()["version"]
    image = f"herald:{_project()['version']}"
    user = re.search(r"^USER (\d+)$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert user
    pods = [
        d["spec"]["template"]["spec"]
        for d in default_objects()
        if d["kind"] in ("Deployment", "Job")
    ]
    assert pods
    for pod in pods:
        for container in pod["containers"]:
            assert container["image"] == image, container["name"]
        assert pod["securityContext"]["runAsUser"] == int(user[1])  # the image's user

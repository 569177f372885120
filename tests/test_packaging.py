"""What is shipped: the wheel holds every module of the services, and the container recipe copies
every package and is the image the Helm chart runs; its dependencies come from a lock with hashes
(which installs), its base is pinned by digest, its labels say what it is."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import cast

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


LOCK = ROOT / "deploy" / "container" / "requirements.lock"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}\b")


def _locked() -> dict[str, tuple[str, list[str]]]:
    """The lock's entries: canonical name -> (version, hashes)."""
    text = LOCK.read_text().replace("\\\n", " ")
    entries: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, *options = line.split()
        name, _, version = requirement.partition("==")
        assert version, f"not pinned with ==: {line!r}"
        entries[canonicalize_name(name)] = (
            version,
            [o.removeprefix("--hash=") for o in options if o.startswith("--hash=")],
        )
    return entries


def _dependencies() -> list[Requirement]:
    return [Requirement(d) for d in cast(list[str], _project()["dependencies"])]


def test_the_lock_pins_every_runtime_dependency_at_a_version_the_project_allows() -> None:
    locked = _locked()
    for requirement in _dependencies():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {LOCK.name}"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)


def test_every_locked_requirement_carries_sha256_hashes() -> None:
    locked = _locked()
    assert len(locked) > len(_dependencies())  # the transitive ones too
    for name, (_, hashes) in locked.items():
        assert hashes, f"{name} has no --hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), name


def test_the_lock_says_how_to_regenerate_it() -> None:
    header = LOCK.read_text().split("\n", 3)[:3]
    assert any(
        "uv pip compile pyproject.toml --generate-hashes" in line
        and "-o deploy/container/requirements.lock" in line
        for line in header
    )


def test_the_lock_installs_with_hashes_and_holds_every_dependency_of_what_it_pins(
    tmp_path: Path,
) -> None:
    """What the image runs, against PyPI, without installing: every file is found with a listed
    hash, and (dependencies resolved, the project's extras included) nothing outside the lock is
    needed, so the image's `--no-deps` install misses nothing."""
    text = LOCK.read_text()
    for requirement in _dependencies():
        if requirement.extras:
            extras = ",".join(sorted(requirement.extras))
            pattern = rf"^{re.escape(requirement.name)}=="
            text, found = re.subn(
                pattern, f"{requirement.name}[{extras}]==", text, flags=re.MULTILINE | re.IGNORECASE
            )
            assert found == 1, requirement
    with_extras = tmp_path / "requirements.lock"
    with_extras.write_text(text)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"),
            *("--require-hashes", "--disable-pip-version-check", "-r", str(with_extras)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Would install" in result.stdout


def test_the_images_install_only_what_the_lock_hashes_then_herald_without_dependencies() -> None:
    runs = " ".join(DOCKERFILE.read_text().replace("\\\n", " ").split())
    assert "pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock" in runs
    assert "COPY deploy/container/requirements.lock /tmp/requirements.lock" in runs
    assert "pip install --no-cache-dir --no-index --no-deps /wheels/herald-" in runs
    # The build stage downloads nothing: Herald's wheel only, with the base image's setuptools.
    assert "pip wheel --no-cache-dir --no-build-isolation --no-deps" in runs


def test_every_base_image_is_pinned_by_digest() -> None:
    bases = re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert len(bases) == 2
    assert all(DIGEST.search(base) for base in bases), bases
    assert len(set(bases)) == 1, "both stages on the same base"


def _labels() -> dict[str, str]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    [block] = re.findall(r"^LABEL (.*)$", text, flags=re.MULTILINE)
    return dict(re.findall(r'(\S+)="([^"]*)"', block))


def _args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=?(.*)$", DOCKERFILE.read_text(), flags=re.MULTILINE))


def test_the_image_carries_the_oci_labels_of_the_project() -> None:
    labels, args = _labels(), _args()
    prefix = "org.opencontainers.image."
    assert labels[prefix + "title"] == _project()["name"]
    assert labels[prefix + "description"] == _project()["description"]
    assert labels[prefix + "licenses"] == cast(dict[str, str], _project()["license"])["text"]
    assert labels[prefix + "version"] == "${VERSION}"
    assert args["VERSION"] == _project()["version"]
    assert labels[prefix + "revision"] == "${REVISION}"
    assert "REVISION" in args
    assert labels[prefix + "source"] == "${SOURCE}"
    assert "SOURCE" in args
    [base] = set(re.findall(r"^FROM (\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE))
    assert base.endswith("@" + labels[prefix + "base.digest"])

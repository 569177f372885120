"""Find, or build once, the `etcd` and `kube-apiserver` binaries of the real-cluster test tier.

Where they come from, in order:
1. `KUBEBUILDER_ASSETS`, when it names a directory holding executable `etcd` and `kube-apiserver`
   (controller-runtime's envtest convention, which `setup-envtest` fills): used as they are.
2. The cache, `$HERALD_KUBE_ASSETS_DIR` or `${XDG_CACHE_HOME:-~/.cache}/herald/kube-assets`, one
   folder per pinned version pair: built binaries are kept there, outside any clone, so every clone
   of the project on the machine shares them.
3. Otherwise they are built from source fetched through the Go module proxy (the only source of
   Kubernetes binaries on machines without download sites): about 13 minutes and 2.4 GiB of memory
   on 2 cores the first time, seconds with a warm Go build cache. Facts, measured here:
   shared/reference/real-kubernetes.md.
   - `go install` refuses both modules (their go.mod files have `replace` directives), so each
     module is downloaded (`go mod download -json`), copied somewhere writable and its go.mod edited:
     etcd's four replaces of its sibling modules are dropped; Kubernetes' `go.work` is deleted (it
     uses ./staging, which the module zip lacks), its replaces into ./staging dropped, and each
     `k8s.io/*` module it requires at `v0.0.0` required at the published version matching the
     release (`v0.37.2` for `v1.37.2`).
   - Built with `GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=local`, stripped, and with the version set
     so that `/version` reports it.

`python -m herald_dev.kubeassets` prints the directory (building first if needed); set
`KUBEBUILDER_ASSETS` to it to reuse the binaries elsewhere.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

KUBERNETES_VERSION = "v1.37.2"
"""The kube-apiserver release (module k8s.io/kubernetes). Kubernetes 1.37 needs Go >= 1.26."""
ETCD_VERSION = "v3.7.3"
"""The etcd release (module go.etcd.io/etcd/server/v3)."""
BINARIES = ("etcd", "kube-apiserver")


class AssetsError(RuntimeError):
    """The binaries are neither given nor buildable here (no Go, a module the proxy refuses...)."""


def staging_version(kubernetes_version: str) -> str:
    """`v1.37.2` -> `v0.37.2`: the version Kubernetes publishes its staging modules (k8s.io/api,
    k8s.io/apiserver...) under for a release."""
    major, minor, patch = kubernetes_version.removeprefix("v").split(".")
    if major != "1":
        raise AssetsError(f"unexpected Kubernetes version {kubernetes_version}")
    return f"v0.{minor}.{patch}"


def given_assets(env: Mapping[str, str]) -> Path | None:
    """The `KUBEBUILDER_ASSETS` directory, if it holds both binaries; None when unset or empty.

    Raises AssetsError when it is set but lacks one of them: silently building instead would hide
    a wrong setting."""
    value = env.get("KUBEBUILDER_ASSETS", "").strip()
    if not value:
        return None
    directory = Path(value)
    missing = [name for name in BINARIES if not _executable(directory / name)]
    if missing:
        raise AssetsError(
            f"KUBEBUILDER_ASSETS={value} has no executable {' or '.join(missing)}; "
            "unset it to build the binaries from the Go module proxy"
        )
    return directory


def cache_dir(env: Mapping[str, str]) -> Path:
    """Where built binaries are kept, per version pair."""
    if base := env.get("HERALD_KUBE_ASSETS_DIR", "").strip():
        root = Path(base)
    else:
        xdg = env.get("XDG_CACHE_HOME", "").strip()
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "herald" / "kube-assets"
    return root / f"kubernetes-{KUBERNETES_VERSION}_etcd-{ETCD_VERSION}"


def ensure_assets(env: Mapping[str, str] | None = None, *, log: bool = True) -> Path:
    """The directory holding `etcd` and `kube-apiserver`: given, cached, or built now (once, even
    with several processes asking at the same time). Raises AssetsError."""
    env = os.environ if env is None else env
    if (given := given_assets(env)) is not None:
        return given
    target = cache_dir(env)
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if _complete(target):  # built by another process while this one waited
            return target
        go_env = _go_env(env)  # before saying a build starts: `go` may be missing
        if log:
            print(
                f"kubeassets: building etcd {ETCD_VERSION} and kube-apiserver "
                f"{KUBERNETES_VERSION} from the Go module proxy into {target} "
                "(about 13 minutes the first time on 2 cores) ...",
                file=sys.stderr,
                flush=True,
            )
        _build_all(target, go_env)
    return target


def _complete(directory: Path) -> bool:
    return all(_executable(directory / name) for name in BINARIES)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _go_env(env: Mapping[str, str]) -> dict[str, str]:
    if shutil.which("go", path=env.get("PATH")) is None:
        raise AssetsError(
            "`go` is not installed: install Go >= 1.26, or set KUBEBUILDER_ASSETS to a directory "
            "holding etcd and kube-apiserver"
        )
    flags = " ".join([*env.get("GOFLAGS", "").split(), "-mod=mod"])
    return {**env, "GOWORK": "off", "GOFLAGS": flags, "GOTOOLCHAIN": "local"}


def _run(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AssetsError(f"`{' '.join(args)}` failed in {cwd}:\n{done.stderr[-4000:]}")
    return done.stdout


def _module_copy(module: str, version: str, into: Path, env: Mapping[str, str]) -> Path:
    """Download MODULE@VERSION through the proxy; return a writable copy of its source."""
    info = json.loads(
        _run(["go", "mod", "download", "-json", f"{module}@{version}"], cwd=into, env=env)
    )
    if info.get("Error") or not info.get("Dir"):
        raise AssetsError(f"cannot download {module}@{version}: {info.get('Error')}")
    copy = into / module.replace("/", "_")
    if copy.exists():
        shutil.rmtree(copy, onerror=_make_writable_and_retry)
    shutil.copytree(info["Dir"], copy, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return copy


def _make_writable_and_retry(function: object, path: str, _: object) -> None:
    os.chmod(path, stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)
    function(path)  # type: ignore[operator]


def _build_all(target: Path, go_env: Mapping[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix=".build-", dir=target.parent) as work_dir:
        work = Path(work_dir)
        staged = work / "bin"
        staged.mkdir()
        _build_etcd(work, staged, go_env)
        _build_kube_apiserver(work, staged, go_env)
        target.mkdir(parents=True, exist_ok=True)
        for name in BINARIES:  # a rename each: a reader never sees half a binary
            os.replace(staged / name, target / name)
        shutil.rmtree(work, onerror=_make_writable_and_retry)


def _build_etcd(work: Path, out: Path, env: Mapping[str, str]) -> None:
    source = _module_copy("go.etcd.io/etcd/server/v3", ETCD_VERSION, work, env)
    siblings = ("api/v3", "client/pkg/v3", "client/v3", "pkg/v3")
    drops = [f"-dropreplace=go.etcd.io/etcd/{s}" for s in siblings]
    _run(["go", "mod", "edit", *drops], cwd=source, env=env)
    _run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out / "etcd"), "."],
        cwd=source,
        env=env,
    )


def _build_kube_apiserver(work: Path, out: Path, env: Mapping[str, str]) -> None:
    source = _module_copy("k8s.io/kubernetes", KUBERNETES_VERSION, work, env)
    for name in ("go.work", "go.work.sum"):
        (source / name).unlink(missing_ok=True)
    module = json.loads(_run(["go", "mod", "edit", "-json"], cwd=source, env=env))
    edits = [
        f"-dropreplace={r['Old']['Path']}"
        for r in module.get("Replace") or []
        if r["New"]["Path"].startswith("./staging/")
    ]
    staging = staging_version(KUBERNETES_VERSION)
    edits += [
        f"-require={r['Path']}@{staging}"
        for r in module.get("Require") or []
        if r["Path"].startswith("k8s.io/") and r["Version"] == "v0.0.0"
    ]
    _run(["go", "mod", "edit", *edits], cwd=source, env=env)
    minor = KUBERNETES_VERSION.removeprefix("v").split(".")[1]
    version_pkg = "k8s.io/component-base/version"
    ldflags = (
        f"-s -w -X {version_pkg}.gitVersion={KUBERNETES_VERSION} "
        f"-X {version_pkg}.gitMajor=1 -X {version_pkg}.gitMinor={minor}"
    )
    _run(
        [
            "go",
            "build",
            "-trimpath",
            "-ldflags",
            ldflags,
            "-o",
            str(out / "kube-apiserver"),
            "./cmd/kube-apiserver",
        ],
        cwd=source,
        env=env,
    )


def main() -> int:
    try:
        print(ensure_assets())
    except AssetsError as e:
        print(f"kubeassets: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

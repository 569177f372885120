#!/usr/bin/env bash
# Sets up everything Herald's local runs and tests need, from nothing, idempotently:
#   - the PostgreSQL server binaries (Debian's package), if missing, without starting a system cluster;
#   - a virtualenv at .venv with Herald and its dev tools (re-installed when pyproject.toml changes);
#   - the Kafka broker jars from Maven Central, cached under .cache/kafka-libs;
#   - promtool (Debian's 'prometheus' package), if missing, for the tests of the alert rules;
#   - Helm v3, built from the Go module proxy into ${XDG_CACHE_HOME:-~/.cache}/herald/bin, if missing.
# Needs python3 (>= 3.11), Java 17, Maven and Go.
set -euo pipefail
cd "$(dirname "$0")/../.."

have_postgres() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; }
if ! have_postgres; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: PostgreSQL server binaries missing; install Debian's 'postgresql' package" >&2
    exit 1
  fi
  echo "setup: installing PostgreSQL (Debian package) ..." >&2
  # Install the binaries only: no 'main' cluster, no service started.
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster *= *false' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
# promtool, which the tests of the alert rules run: taken out of Debian's 'prometheus' package into
# a cache outside the clone (shared by every clone on the machine); no Prometheus server is installed
# or started. herald_dev.tools.promtool() looks on the PATH, then there.
promtool_dir=${XDG_CACHE_HOME:-$HOME/.cache}/herald/bin
if ! command -v promtool >/dev/null && [ ! -x "$promtool_dir/promtool" ]; then
  echo "setup: fetching promtool (Debian's prometheus package) ..." >&2
  deb_dir=$(mktemp -d) && chmod 755 "$deb_dir"  # apt's _apt user writes the download there
  if ! (cd "$deb_dir" && apt-get download -qq prometheus 2>/dev/null); then
    [ "$(id -u)" = 0 ] || { echo "setup: cannot download Debian's prometheus package" >&2; exit 1; }
    apt-get update -qq
    (cd "$deb_dir" && apt-get download -qq prometheus)
  fi
  dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
  mkdir -p "$promtool_dir"
  install -m 0755 "$deb_dir/root/usr/bin/promtool" "$promtool_dir/promtool"
  rm -rf "$deb_dir"
fi

for tool in java mvn; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is needed (Java 17 and Maven)" >&2; exit 1; }
done

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.herald-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
.venv/bin/python -c 'from herald_dev.infra import ensure_kafka_libs; ensure_kafka_libs()'

# Helm, for the chart's tests (tests/deploy): `go install` from the Go module proxy (the only source
# of Go binaries on machines without download sites), into a cache outside the clone that every clone
# on the machine shares and `make clean` keeps; only when missing or of another version
# (herald_dev/helm.py finds it there). The first build took 1 min 54 s on 2 shared cores, with the
# modules downloaded and the Go build cache cold; 9 s with the build cache warm.
helm_version=v3.22.0
helm_bin="${XDG_CACHE_HOME:-$HOME/.cache}/herald/bin/helm"
if [ "$("$helm_bin" version --template '{{.Version}}' 2>/dev/null)" != "$helm_version" ]; then
  command -v go >/dev/null || { echo "setup: go is needed (to build helm $helm_version)" >&2; exit 1; }
  echo "setup: building helm $helm_version from the Go module proxy (about 2 min, once) ..." >&2
  mkdir -p "$(dirname "$helm_bin")"
  # The -X flags of Helm's own Makefile: without them `helm version` is empty and Helm assumes
  # Kubernetes 1.20 (the tests pass --kube-version anyway); 1.37 is its client-go's.
  ldflags="-X helm.sh/helm/v3/internal/version.version=$helm_version"
  for pkg in pkg/chartutil pkg/lint/rules; do
    ldflags="$ldflags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=37"
  done
  GOBIN="$(dirname "$helm_bin")" GOFLAGS=-mod=mod GOTOOLCHAIN=local go install -ldflags "$ldflags" \
    "helm.sh/helm/v3/cmd/helm@$helm_version"
fi

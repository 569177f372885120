"""Fixtures: one real Kafka broker and one real Postgres server per test session (started by the
project's own `herald_dev.infra`, or taken from HERALD_KAFKA_BOOTSTRAP / HERALD_DATABASE_URL), and
fresh topics, databases and simulated clusters per test."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings

from dispatchers.postgres import Store
from herald_dev import infra
from herald_dev.fakekube import FakeKube
from herald_dev.processes import ServiceProcess

# CI (which sets CI=true) runs the property tests on a fixed sequence of examples, so that a red run
# is one anyone can repeat; local runs draw new examples each time and keep the failing ones in
# .hypothesis/ to replay them first.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def infra_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def infra_env(infra_state_dir: Path) -> Iterator[dict[str, str]]:
    state_dir = infra_state_dir
    given = {
        key: value
        for key in ("HERALD_KAFKA_BOOTSTRAP", "HERALD_DATABASE_URL")
        if (value := os.environ.get(key))
    }
    try:
        yield infra.up(state_dir, env=given).env()
    finally:
        infra.down(state_dir)


@pytest.fixture
def kafka(infra_env: dict[str, str]) -> str:
    return infra_env["HERALD_KAFKA_BOOTSTRAP"]


@dataclass(frozen=True)
class Topics:
    raw: str
    domain: str
    dead_letters: str
    checkpoints: str

    def env(self) -> dict[str, str]:
        return {
            "HERALD_RAW_TOPIC": self.raw,
            "HERALD_DOMAIN_TOPIC": self.domain,
            "HERALD_DEAD_LETTER_TOPIC": self.dead_letters,
            "HERALD_CHECKPOINT_TOPIC": self.checkpoints,  # created by the collector
        }


@pytest.fixture
def topics(kafka: str) -> Topics:
    """Fresh raw, domain and dead-letter topics (3 partitions each) for this test."""
    suffix = uuid.uuid4().hex[:10]
    fresh = Topics(
        raw=f"test.{suffix}.kube-events",
        domain=f"test.{suffix}.deploy-events",
        dead_letters=f"test.{suffix}.dead-letters",
        checkpoints=f"test.{suffix}.collector-checkpoints",
    )
    infra.create_topics(kafka, fresh.env(), partitions=3)
    return fresh


@pytest.fixture
def database_url(infra_env: dict[str, str]) -> Iterator[str]:
    """A fresh, migrated database for this test, dropped afterwards."""
    admin_url = infra_env["HERALD_DATABASE_URL"]
    name = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    store = Store.open(url)
    store.migrate()
    store.close()
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    fake = FakeKube(bookmark_interval_s=0.2)
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def kubeconfig(fake_kube: FakeKube, tmp_path: Path) -> Path:
    return fake_kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def quiet_kube() -> Iterator[FakeKube]:
    """A simulated cluster that sends no bookmarks, as a real API server does for Events: a quiet
    watch carries nothing at all until its server-side timeout ends it."""
    fake = FakeKube(bookmarks=False)
    fake.serve()
    yield fake
    fake.stop()


@pytest.fixture
def quiet_kubeconfig(quiet_kube: FakeKube, tmp_path: Path) -> Path:
    return quiet_kube.write_kubeconfig(tmp_path / "quiet-kubeconfig")


@pytest.fixture
def services(tmp_path: Path, infra_env: dict[str, str]) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services as real processes (`python -m <module>`); all are stopped after the test,
    and their logs are printed when it failed."""
    started: list[ServiceProcess] = []

    def start(module: str, env: dict[str, str], *args: str) -> ServiceProcess:
        full_env = {**infra_env, "HERALD_METRICS_PORT": "0", **env}
        name = f"{module}-{len(started)}"
        process = ServiceProcess(
            module, full_env, tmp_path / "logs" / f"{name}.log", args=args
        ).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
    for process in started:
        print(f"--- {process.module} log ({process.log_path}):\n{process.log_tail(60)}")


def topics_not_created(suffix: str) -> Topics:
    """Unique topic names no test has created: for services started before their topics."""
    return Topics(
        raw=f"notyet.{suffix}.raw",
        domain=f"notyet.{suffix}.domain",
        dead_letters=f"notyet.{suffix}.dead",
        checkpoints=f"notyet.{suffix}.checkpoints",
    )


def ensure_topics(kafka: str, topics: Topics, *, partitions: int = 3) -> None:
    """What an operator runs: the command a service waiting for its topics names."""
    result = subprocess.run(
        [sys.executable, "-m", "herald_runtime.topics", "ensure"],
        env={
            **os.environ,
            **topics.env(),
            "HERALD_KAFKA_BOOTSTRAP": kafka,
            "HERALD_TOPIC_PARTITIONS": str(partitions),
        },
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

"""The local infrastructure script is idempotent and stops only what it started."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from herald_dev import infra


def test_up_again_reuses_what_is_running(infra_env: dict[str, str], infra_state_dir: Path) -> None:
    before = infra.load_state(infra_state_dir)
    again = infra.up(infra_state_dir, env={})
    assert again.env() == infra_env
    assert (again.kafka_pid, again.postgres_pid) == (before.kafka_pid, before.postgres_pid)


def test_given_services_are_used_as_they_are_and_never_stopped(
    infra_env: dict[str, str], tmp_path: Path
) -> None:
    state = infra.up(tmp_path, env=infra_env)
    assert state.started == []
    assert state.env() == infra_env
    infra.down(tmp_path)
    assert (
        AdminClient({"bootstrap.servers": infra_env["HERALD_KAFKA_BOOTSTRAP"]})
        .list_topics(timeout=10)
        .brokers
    )
    with psycopg.connect(infra_env["HERALD_DATABASE_URL"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_topics_are_created_once_and_kept(infra_env: dict[str, str]) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        "HERALD_RAW_TOPIC": f"test.{run}.raw",
        "HERALD_DOMAIN_TOPIC": f"test.{run}.domain",
        "HERALD_DEAD_LETTER_TOPIC": f"test.{run}.dead",
    }
    bootstrap = infra_env["HERALD_KAFKA_BOOTSTRAP"]
    assert sorted(infra.create_topics(bootstrap, env)) == sorted(env.values())
    assert infra.create_topics(bootstrap, env) == []
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert len(topics[f"test.{run}.raw"].partitions) == 6
    assert len(topics[f"test.{run}.dead"].partitions) == 1


def test_a_given_broker_and_server_are_served_without_a_pid_of_ours(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HERALD_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("HERALD_DATABASE_URL", "postgresql://herald@127.0.0.1:2/herald")
    with infra.kafka_broker_served(tmp_path) as kafka, infra.postgres_server_served() as pg:
        assert kafka == infra.Served("127.0.0.1:1", None)
        assert pg == infra.Served("postgresql://herald@127.0.0.1:2/herald", None)
    with infra.kafka_broker(tmp_path) as bootstrap, infra.postgres_server() as url:
        assert (bootstrap, url) == ("127.0.0.1:1", "postgresql://herald@127.0.0.1:2/herald")

"""Local infrastructure: a real Kafka broker (KRaft, from Maven Central jars) and a throwaway Postgres.

    python -m herald_dev.infra up     start what is not running, create topics (as
                                      `python -m herald_runtime.topics ensure`), migrate; print env
    python -m herald_dev.infra env    print the environment of what is running
    python -m herald_dev.infra down   stop, by pid, only what `up` started

Everything listens on 127.0.0.1 on free ports. Where `HERALD_KAFKA_BOOTSTRAP` or
`HERALD_DATABASE_URL` is already set, that service is used as it is and nothing is started for it.
`up` is idempotent: what is already running from an earlier `up` (same state directory) is reused.
State (pids, ports, data directories, logs) lives in the state directory, `.herald-local/` by default.
The tests use the same code with a state directory of their own.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import psycopg
from confluent_kafka.admin import AdminClient

from herald_runtime.topics.ensuring import TopicsError, ensure
from herald_runtime.topics.kafka import KafkaBroker
from herald_runtime.topics.plan import TopicSettings, TopicSettingsError, herald_topics

REPO = Path(__file__).resolve().parents[1]
KAFKA_POM = REPO / "deploy" / "local" / "kafka" / "pom.xml"
KAFKA_LIBS = REPO / ".cache" / "kafka-libs"
KAFKA_JAR = "kafka_2.13-3.9.1.jar"
DEFAULT_STATE_DIR = REPO / ".herald-local"

_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Brokers this process started, so that `down` reaps them (no zombie, no ResourceWarning)."""


class InfraError(RuntimeError):
    pass


@dataclass
class State:
    kafka_bootstrap: str = ""
    database_url: str = ""
    kafka_pid: int | None = None
    kafka_dir: str | None = None
    postgres_pid: int | None = None
    postgres_dir: str | None = None
    started: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return {
            "HERALD_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "HERALD_DATABASE_URL": self.database_url,
        }


def load_state(state_dir: Path) -> State:
    path = state_dir / "state.json"
    if not path.exists():
        return State()
    return State(**json.loads(path.read_text()))


def _save(state_dir: Path, state: State) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "state.json").write_text(json.dumps(asdict(state), indent=2))
    lines = [f"export {k}={v}" for k, v in state.env().items()]
    (state_dir / "env").write_text("\n".join(lines) + "\n")


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, *, timeout_s: float, pid: int | None, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pid is not None and not alive(pid):
            raise InfraError(f"process {pid} exited during start; see {log}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise InfraError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s; see {log}")


# -- Kafka ----------------------------------------------------------------------------------------


def ensure_kafka_libs() -> Path:
    """Fetch the broker's jars from Maven Central once (cached under .cache/)."""
    if (KAFKA_LIBS / KAFKA_JAR).exists():
        return KAFKA_LIBS
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("Maven (mvn) is needed to fetch the Kafka broker jars")
    print(f"fetching the Kafka broker jars into {KAFKA_LIBS} ...", file=sys.stderr)
    subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={KAFKA_LIBS}",
        ],
        check=True,
    )
    return KAFKA_LIBS


def start_kafka(state_dir: Path) -> tuple[int, str, str]:
    """Format and start a single-node KRaft broker; return (pid, bootstrap, directory)."""
    java = shutil.which("java")
    if java is None:
        raise InfraError("Java 17 (java) is needed to run the Kafka broker")
    libs = ensure_kafka_libs()
    home = state_dir / "kafka"
    if home.exists():
        shutil.rmtree(home)
    (home / "data").mkdir(parents=True)
    broker_port, controller_port = free_port(), free_port()
    properties = home / "server.properties"
    properties.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={home / 'data'}",
                "num.partitions=1",
                "auto.create.topics.enable=false",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=6",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.flush.interval.messages=9223372036854775807",
                "",
            ]
        )
    )
    log4j = home / "log4j.properties"
    log4j.write_text(
        "log4j.rootLogger=WARN, file\n"
        "log4j.appender.file=org.apache.log4j.FileAppender\n"
        f"log4j.appender.file.File={home / 'broker.log'}\n"
        "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka=INFO\n"
    )
    classpath = f"{libs}/*"
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    jvm = [java, "-Xms256m", "-Xmx768m", f"-Dlog4j.configuration=file:{log4j}", "-cp", classpath]
    subprocess.run(
        # `--cluster-id=` form: a random id may start with "-", which would read as an option.
        [
            *jvm,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(properties),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    bootstrap = f"127.0.0.1:{broker_port}"
    return launch_kafka(home, bootstrap), bootstrap, str(home)


def launch_kafka(home: Path, bootstrap: str) -> int:
    """Start the broker formatted in `home` (again, after `stop_kafka`); return its pid when ready."""
    java = shutil.which("java") or "java"
    jvm = [
        java,
        "-Xms256m",
        "-Xmx768m",
        f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
        "-cp",
        f"{ensure_kafka_libs()}/*",
    ]
    with (home / "stdout.log").open("ab") as out:
        process = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(home / "server.properties")],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    port = int(bootstrap.rsplit(":", 1)[1])
    _wait_port(port, timeout_s=60, pid=process.pid, log=home / "broker.log")
    _wait_kafka_ready(bootstrap)
    return process.pid


def stop_kafka(pid: int) -> None:
    """Stop a broker this module started (controlled shutdown), waiting for it to exit."""
    _stop(pid, signal.SIGTERM)


def _wait_kafka_ready(bootstrap: str, *, timeout_s: float = 60) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            metadata = admin.list_topics(timeout=5)
            if metadata.brokers:
                return
        except Exception as e:
            if time.monotonic() > deadline:
                raise InfraError(f"Kafka at {bootstrap} is not ready: {e}") from e
        time.sleep(0.3)


def create_topics(
    bootstrap: str, env: Mapping[str, str], *, partitions: int | None = None
) -> list[str]:
    """Ensure Herald's topics as `python -m herald_runtime.topics ensure` does (names and the
    other topic settings from `env`, defaults otherwise; `partitions` overrides every topic's
    count, for tests); return the names of those it created. Drift it cannot fix (fewer
    partitions than wanted) is printed, not raised: tests reuse the default topics."""
    specs = herald_topics(TopicSettings.from_env(env))
    if partitions:
        specs = tuple(replace(spec, partitions=partitions) for spec in specs)
    outcomes = ensure(KafkaBroker(bootstrap, timeout_s=30), specs)
    for outcome in outcomes:
        if not outcome.ok:
            print(f"topic {outcome.name}: {outcome.describe()}", file=sys.stderr)
    return [outcome.name for outcome in outcomes if outcome.created]


# -- Postgres -------------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """Debian keeps initdb and pg_ctl out of PATH, under /usr/lib/postgresql/<version>/bin."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
        reverse=True,
    )
    if candidates:
        return candidates[0].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise InfraError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found; on Debian: apt-get install postgresql"
    )


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root; run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


def start_postgres() -> tuple[int, str, str]:
    """initdb a throwaway cluster in a temp dir and start it; return (pid, url, directory)."""
    bindir = postgres_bin()
    home = Path(tempfile.mkdtemp(prefix="herald-pg-"))
    home.chmod(0o755)
    data, sockets = home / "data", home / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "herald",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--locale=C",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(home / "postgres.log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (home / "options").write_text(options)
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    with psycopg.connect(f"postgresql://herald@127.0.0.1:{port}/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE herald")
    return pid, f"postgresql://herald@127.0.0.1:{port}/herald", str(home)


def pg_ctl(home: str, action: str) -> None:
    """`stop` (fast) or `start` (with the options it was first started with) a cluster that
    `start_postgres` created; fault tests use it to take the database away and bring it back."""
    directory = Path(home)
    command = [str(postgres_bin() / "pg_ctl"), "-D", str(directory / "data"), "-w", "-t", "60"]
    if action == "stop":
        command += ["-m", "fast", "stop"]
    elif action == "start":
        options = (directory / "options").read_text()
        command += ["-l", str(directory / "postgres.log"), "-o", options, "start"]
    else:
        raise ValueError(f"pg_ctl action must be stop or start, not {action!r}")
    subprocess.run(_as_postgres(command), check=True, stdout=subprocess.DEVNULL)


@dataclass(frozen=True)
class Served:
    """A broker's bootstrap or a server's URL, and the pid of the process serving it when this
    process started it (None: given by the environment, maybe shared with others)."""

    address: str
    pid: int | None


@contextmanager
def kafka_broker(state_dir: Path) -> Iterator[str]:
    """HERALD_KAFKA_BOOTSTRAP if set, else a broker of our own for the block (benchmarks)."""
    with kafka_broker_served(state_dir) as served:
        yield served.address


@contextmanager
def kafka_broker_served(state_dir: Path) -> Iterator[Served]:
    """`kafka_broker`, with the broker's pid when it is our own (benchmarks counting its CPU)."""
    given = os.environ.get("HERALD_KAFKA_BOOTSTRAP", "")
    if given:
        yield Served(given, None)
        return
    pid, bootstrap, _ = start_kafka(state_dir)
    try:
        yield Served(bootstrap, pid)
    finally:
        stop_kafka(pid)


@contextmanager
def postgres_server() -> Iterator[str]:
    """HERALD_DATABASE_URL if set, else a throwaway cluster of our own for the block."""
    with postgres_server_served() as served:
        yield served.address


@contextmanager
def postgres_server_served() -> Iterator[Served]:
    """`postgres_server`, with the postmaster's pid when it is our own."""
    given = os.environ.get("HERALD_DATABASE_URL", "")
    if given:
        yield Served(given, None)
        return
    pid, url, home = start_postgres()
    try:
        yield Served(url, pid)
    finally:
        pg_ctl(home, "stop")
        shutil.rmtree(home, ignore_errors=True)


# -- up / down ------------------------------------------------------------------------------------


def up(state_dir: Path = DEFAULT_STATE_DIR, env: Mapping[str, str] | None = None) -> State:
    env = os.environ if env is None else env
    state = load_state(state_dir)
    if env.get("HERALD_KAFKA_BOOTSTRAP"):
        state.kafka_bootstrap = env["HERALD_KAFKA_BOOTSTRAP"]
    elif not (alive(state.kafka_pid) and state.kafka_bootstrap):
        state.kafka_pid, state.kafka_bootstrap, state.kafka_dir = start_kafka(state_dir)
        state.started = sorted({*state.started, "kafka"})
        _save(state_dir, state)
    if env.get("HERALD_DATABASE_URL"):
        state.database_url = env["HERALD_DATABASE_URL"]
    elif not (alive(state.postgres_pid) and state.database_url):
        state.postgres_pid, state.database_url, state.postgres_dir = start_postgres()
        state.started = sorted({*state.started, "postgres"})
        _save(state_dir, state)
    create_topics(state.kafka_bootstrap, env)
    from dispatchers.postgres import Store  # noqa: PLC0415 - the migrations are the dispatcher's

    store = Store.open(state.database_url)
    try:
        store.migrate()
    finally:
        store.close()
    _save(state_dir, state)
    return state


def _stop(pid: int | None, sig: signal.Signals, *, timeout_s: float = 30) -> None:
    """Signal `pid`, wait for it to exit (SIGKILL after the timeout), and reap it if ours."""
    if pid is None:
        return
    child = _CHILDREN.pop(pid, None)
    if alive(pid):
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    if child is not None:
        child.wait()


def down(state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Stop what `up` started (and nothing else), then forget it."""
    state = load_state(state_dir)
    if "kafka" in state.started:
        _stop(state.kafka_pid, signal.SIGTERM)
        if state.kafka_dir:
            shutil.rmtree(state.kafka_dir, ignore_errors=True)
    if "postgres" in state.started:
        _stop(state.postgres_pid, signal.SIGINT)  # Postgres: SIGINT is a fast shutdown
        if state.postgres_dir:
            shutil.rmtree(state.postgres_dir, ignore_errors=True)
    (state_dir / "state.json").unlink(missing_ok=True)
    (state_dir / "env").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m herald_dev.infra",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["up", "down", "env"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            state = up(args.state_dir)
        elif args.command == "down":
            down(args.state_dir)
            return
        else:
            state = load_state(args.state_dir)
    except (InfraError, subprocess.CalledProcessError, TopicsError, TopicSettingsError) as e:
        sys.exit(f"infra: {e}")
    for key, value in state.env().items():
        print(f"export {key}={value}")


if __name__ == "__main__":
    main()

"""The domain topic read as other teams read it: with the Java CloudEvents SDK (`java/`, a Maven
project using io.cloudevents:cloudevents-kafka's `CloudEventDeserializer`) and with the Python SDK
(`cloudevents.core.bindings.kafka` on records read with confluent-kafka). docs/contracts.md
("Consuming the domain topic") shows the same calls as its ten-line examples. And written as other
platforms publish their own events: with the Java SDK's `CloudEventSerializer` (the publisher
`dev.herald.publishers.PublishEvent`, in the same jar).

The Java consumer is built with Maven into `java/target/` when its sources (pom.xml, src/) changed
since the last build: a hash of them is kept beside the jar, so an unchanged checkout never runs
Maven again. Dependencies come from Maven Central into the local repository (~/.m2), which outlives
the build directory.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event

from tests.support import consume

JAVA_PROJECT = Path(__file__).resolve().parent / "java"
JAR = JAVA_PROJECT / "target" / "herald-java-consumer.jar"
_STAMP = JAVA_PROJECT / "target" / ".herald-sources.sha256"
BUILD_TIMEOUT_S = 900
"""A first build downloads about 50 MB from Maven Central (seconds here; minutes on a slow link)."""


class JavaConsumerError(Exception):
    """The Java consumer cannot be built here; the message says why and what to install."""


def _sources_hash() -> str:
    digest = hashlib.sha256()
    paths = [JAVA_PROJECT / "pom.xml", *sorted((JAVA_PROJECT / "src").rglob("*"))]
    for path in paths:
        if path.is_file():
            digest.update(str(path.relative_to(JAVA_PROJECT)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_java_consumer() -> Path:
    """The jar of the Java consumer, built first if its sources changed since it was built; raises
    JavaConsumerError when java or mvn is missing or the build fails (with Maven's output)."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        raise JavaConsumerError(
            f"{' and '.join(missing)} not found: the Java CloudEvents SDK consumer "
            f"({JAVA_PROJECT}) needs Java 17 and Maven (Debian: openjdk-17-jdk-headless maven)"
        )
    wanted = _sources_hash()
    if JAR.exists() and _STAMP.exists() and _STAMP.read_text() == wanted:
        return JAR
    started = time.monotonic()
    try:
        built = subprocess.run(
            ["mvn", "-q", "-B", "-Dstyle.color=never", "package"],
            cwd=JAVA_PROJECT,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise JavaConsumerError(f"mvn package took more than {BUILD_TIMEOUT_S} s") from e
    if built.returncode != 0 or not JAR.exists():
        raise JavaConsumerError(
            f"mvn package failed in {JAVA_PROJECT} (exit {built.returncode}):\n"
            f"{built.stdout[-4000:]}{built.stderr[-4000:]}"
        )
    _STAMP.write_text(wanted)
    print(f"built {JAR} in {time.monotonic() - started:.1f} s")
    return JAR


@dataclass(frozen=True)
class JavaRead:
    """What the Java consumer printed: one dict per record (partition, offset, key, the
    attributes, extensions and data), its exit status and its stderr."""

    returncode: int
    records: list[dict[str, Any]]
    stderr: str


def read_with_java_sdk(jar: Path, bootstrap: str, topic: str, *, timeout_s: int = 60) -> JavaRead:
    """Read `topic` from its beginning to its end offsets with the Java SDK's deserializer.
    Exit 1 means a record it could not read (stderr names it), 2 the end not reached in time."""
    ran = subprocess.run(
        ["java", "-XX:TieredStopAtLevel=1", "-jar", str(jar), bootstrap, topic, str(timeout_s)],
        capture_output=True,
        text=True,
        timeout=timeout_s + 30,
        check=False,
    )
    records = [json.loads(line) for line in ran.stdout.splitlines() if line.strip()]
    return JavaRead(ran.returncode, records, ran.stderr)


@dataclass(frozen=True)
class PythonRead:
    key: bytes | None
    headers: dict[str, bytes]
    event: BaseCloudEvent


def read_with_python_sdk(
    bootstrap: str, topic: str, *, count: int, timeout_s: float = 30
) -> list[PythonRead]:
    """Read `topic` from the beginning until `count` records arrived or the timeout passed, each
    converted by the Python SDK's `from_kafka_event` (which picks the content mode itself)."""
    return [
        PythonRead(
            record.key,
            record.headers,
            from_kafka_event(
                KafkaMessage(headers=record.headers, key=record.key, value=record.value)
            ),
        )
        for record in consume(bootstrap, topic, count=count, timeout_s=timeout_s)
    ]


def publish_with_java_sdk(
    jar: Path,
    bootstrap: str,
    topic: str,
    *,
    mode: str,
    key: str,
    event: dict[str, str],
    data: dict[str, Any],
    timeout_s: int = 60,
) -> None:
    """Publish one CloudEvent with the Java SDK's `CloudEventSerializer` (`PublishEvent` in the
    same jar), `mode` `structured` or `binary`; `event` gives id, source, type and subject, the
    time is now, `data` is JSON. Raises if it does not exit 0."""
    ran = subprocess.run(
        [
            "java",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            str(jar),
            "dev.herald.publishers.PublishEvent",
            bootstrap,
            topic,
            mode,
            key,
            event["id"],
            event["source"],
            event["type"],
            event["subject"],
            json.dumps(data),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr

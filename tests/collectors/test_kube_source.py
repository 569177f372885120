"""The watch loop on the official client against the simulated API server (no Kafka)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collectors.errors import KubeError, SettingsError
from collectors.kube import KubeEventSource
from collectors.watching import Watcher
from herald_dev.fakekube import FakeKube
from herald_runtime.backoff import Backoff
from tests.collectors.test_watching import Collected
from tests.support import rollout_event, wait_until


def _source(kubeconfig: Path) -> KubeEventSource:
    return KubeEventSource.connect(
        kubeconfig=kubeconfig,
        context=None,
        namespace=None,
        connect_timeout_s=2,
        read_timeout_s=5,
        watch_read_margin_s=5,
    )


@pytest.fixture
def running(fake_kube: FakeKube, kubeconfig: Path) -> Iterator[tuple[Watcher, Collected]]:
    sink = Collected()
    watcher = Watcher(
        cluster="c1",
        source=_source(kubeconfig),
        sink=sink,
        observer=sink,
        now=lambda: "2026-01-01T00:00:00Z",
        page_size=2,
        watch_timeout_s=2,
        backoff=Backoff(base_s=0.05, cap_s=0.2),
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    yield watcher, sink
    watcher.stop.set()
    fake_kube.cut_watches()
    thread.join(timeout=10)


@contextmanager
def _watching(kubeconfig: Path, *, page_size: int) -> Iterator[Collected]:
    """A watch loop on the official client against the simulated server, in a thread."""
    sink = Collected()
    watcher = Watcher(
        cluster="c1",
        source=_source(kubeconfig),
        sink=sink,
        observer=sink,
        now=lambda: "t",
        page_size=page_size,
        watch_timeout_s=1,
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        watcher.stop.set()
        thread.join(timeout=10)


def _add(fake: FakeKube, message: str) -> None:
    fake.apply("ADDED", rollout_event("RolloutPaused", message))


def _messages(sink: Collected) -> list[str]:
    return [r.object["message"] for r in sink.records]


def test_existing_events_are_listed_in_pages_and_new_ones_watched(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    for i in range(5):
        _add(fake_kube, f"listed {i}")
    with _watching(kubeconfig, page_size=2) as sink:
        wait_until(lambda: len(sink.records) == 5)
        _add(fake_kube, "watched")
        wait_until(lambda: "watched" in _messages(sink))
    assert sorted(_messages(sink)) == sorted([f"listed {i}" for i in range(5)] + ["watched"])
    assert all("managedFields" not in r.object["metadata"] for r in sink.records)


def test_a_cut_stream_is_resumed_without_loss_or_repeat(
    fake_kube: FakeKube, running: tuple[Watcher, Collected]
) -> None:
    _, sink = running
    _add(fake_kube, "before cut")
    wait_until(lambda: _messages(sink) == ["before cut"])
    fake_kube.cut_watches()
    _add(fake_kube, "after cut")
    wait_until(lambda: "after cut" in _messages(sink))
    assert _messages(sink) == ["before cut", "after cut"]


def test_a_compacted_version_relists(
    fake_kube: FakeKube, running: tuple[Watcher, Collected]
) -> None:
    watcher, sink = running
    _add(fake_kube, "first")
    wait_until(lambda: _messages(sink) == ["first"])
    wait_until(lambda: watcher.resource_version == "1")
    fake_kube.fail_next(503)  # the resumed watch fails once ...
    fake_kube.cut_watches()
    _add(fake_kube, "second")
    fake_kube.compact()  # ... and by the retry its version is gone
    wait_until(lambda: "second" in _messages(sink))
    assert sorted(set(_messages(sink))) == ["first", "second"]


def test_a_wrong_kubeconfig_is_reported_as_a_settings_error(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("this: [is not a kubeconfig")
    with pytest.raises(SettingsError, match="cannot load Kubernetes config"):
        _source(bad)


def test_an_expired_continue_token_during_the_list_relists_without_losing_events(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    for i in range(7):
        _add(fake_kube, f"listed {i}")
    fake_kube.expire_next_continue()
    with _watching(kubeconfig, page_size=3) as sink:
        wait_until(lambda: {f"listed {i}" for i in range(7)} <= set(_messages(sink)))
    assert "relist:expired" in sink.causes
    assert (
        len(sink.records) == 10
    )  # the first page twice: the list had not finished, nothing was known


@dataclass
class CannedResponse:
    """What `_preload_content=False` returns, with a canned body."""

    data: bytes

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        yield from (self.data[i : i + 7] for i in range(0, len(self.data), 7))  # split lines too

    def release_conn(self) -> None:
        pass

    def shutdown(self) -> None:
        pass


class CannedApi:
    """Stands in for CoreV1Api: every call answers the same body; the calls are kept."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.calls: list[dict[str, Any]] = []

    def list_event_for_all_namespaces(self, **kwargs: Any) -> CannedResponse:
        self.calls.append(kwargs)
        return CannedResponse(self.body)


def _canned(body: bytes, api: CannedApi | None = None) -> KubeEventSource:
    return KubeEventSource(
        api or CannedApi(body),  # type: ignore[arg-type]
        namespace=None,
        connect_timeout_s=1,
        read_timeout_s=1,
        watch_read_margin_s=1,
    )


def test_watch_lines_that_are_not_watch_events_reach_the_loop_as_what_they_are() -> None:
    event = rollout_event("RolloutPaused", "Rollout is paused (x)")
    lines = [
        [1, 2],
        {"type": "ADDED", "object": None},
        {"object": {}},
        {"type": "ADDED", "object": event},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    events = list(_canned(body).watch(resource_version="1", timeout_s=1))
    assert [(e.type, e.object) for e in events] == [
        ("", [1, 2]),
        ("ADDED", None),
        ("None", {}),
        ("ADDED", event),
    ]


@pytest.mark.parametrize(
    "body",
    [b"[1]", b'{"items": {"a": 1}}', b'{"metadata": [1], "items": []}', b"\xff\xfe{", b"null"],
    ids=["an array", "items an object", "metadata an array", "not UTF-8", "null"],
)
def test_a_list_response_that_is_not_an_event_list_is_an_api_error(body: bytes) -> None:
    with pytest.raises(KubeError, match="unreadable list response"):
        _canned(body).list_page(limit=10, continue_token=None)


def test_a_watch_reads_for_longer_than_its_server_side_timeout_and_a_list_for_the_read_timeout() -> (
    None
):
    api = CannedApi(b'{"metadata": {"resourceVersion": "12"}, "items": []}')
    source = KubeEventSource(
        api,  # type: ignore[arg-type]
        namespace=None,
        connect_timeout_s=5,
        read_timeout_s=90,
        watch_read_margin_s=30,
    )
    source.list_page(limit=500, continue_token=None)
    list(source.watch(resource_version="12", timeout_s=300))
    assert [call["_request_timeout"] for call in api.calls] == [(5, 90), (5, 330)]


def test_the_current_resource_version_is_asked_with_a_list_of_one() -> None:
    api = CannedApi(b'{"metadata": {"resourceVersion": "12", "continue": "x"}, "items": [{}]}')
    assert _canned(b"", api).current_resource_version() == "12"
    assert api.calls[0]["limit"] == 1
    assert "resource_version" not in api.calls[0]  # a consistent read, not a cache's


def test_a_quiet_watch_longer_than_the_read_timeout_ends_cleanly(
    quiet_kube: FakeKube, quiet_kubeconfig: Path
) -> None:
    _add(quiet_kube, "before")
    source = KubeEventSource.connect(
        kubeconfig=quiet_kubeconfig,
        context=None,
        namespace=None,
        connect_timeout_s=2,
        read_timeout_s=0.5,  # lists only: the watch below is silent for 2 s, and that is fine
        watch_read_margin_s=1,
    )
    assert source.current_resource_version() == "1"
    assert list(source.watch(resource_version="1", timeout_s=2)) == []


def test_a_watch_silent_past_its_server_side_timeout_is_a_dead_connection(
    fake_kube: FakeKube, kubeconfig: Path
) -> None:
    source = KubeEventSource.connect(
        kubeconfig=kubeconfig,
        context=None,
        namespace=None,
        connect_timeout_s=2,
        read_timeout_s=5,
        watch_read_margin_s=0.5,
    )
    fake_kube.silence_next_watches()
    started = time.monotonic()
    with pytest.raises(KubeError):
        list(source.watch(resource_version="0", timeout_s=1))
    assert time.monotonic() - started < 5


def test_an_interrupt_before_the_watch_opens_ends_it_at_once_and_every_later_request(
    quiet_kube: FakeKube, quiet_kubeconfig: Path
) -> None:
    """The stop can come while the loop is still listing: the watch it opens next must not wait
    out its server-side timeout (found on a real API server: SIGTERM right after a long list)."""
    source = _source(quiet_kubeconfig)
    source.interrupt()
    started = time.monotonic()
    with pytest.raises(KubeError, match="interrupted"):
        list(source.watch(resource_version="0", timeout_s=30))
    with pytest.raises(KubeError, match="interrupted"):
        source.list_page(limit=10, continue_token=None)
    assert time.monotonic() - started < 5


def test_an_interrupt_breaks_an_open_quiet_watch(
    quiet_kube: FakeKube, quiet_kubeconfig: Path
) -> None:
    source = _source(quiet_kubeconfig)
    stream = source.watch(resource_version="0", timeout_s=30)
    threading.Timer(0.5, source.interrupt).start()
    started = time.monotonic()
    with pytest.raises(KubeError):
        list(stream)
    assert time.monotonic() - started < 5


def test_watch_connections_are_kept_alive_like_client_gos(kubeconfig: Path) -> None:
    """A quiet watch is silent for its whole timeout: without TCP keepalive an idle-timeout proxy
    or load balancer on the way would drop it."""
    source = _source(kubeconfig)
    options = source._api.api_client.rest_client.pool_manager.connection_pool_kw["socket_options"]
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    assert (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 30) in options

"""A simulated Kubernetes API server that serves core/v1 Events with the real list/watch protocol.

It is what the collectors talk to in tests, benchmarks and the local demo: the official `kubernetes`
client cannot tell it from a real API server for the calls Herald makes.

What it speaks:
- `GET /api/v1/events` and `/api/v1/namespaces/<ns>/events`: list with `limit` / `continue`
  (consistent snapshots, `remainingItemCount`), and `410 Expired` on a continue token whose snapshot
  was compacted away.
- the same paths with `watch=true`: a chunked stream of JSON lines from `resourceVersion`, `BOOKMARK`
  events when `allowWatchBookmarks=true` (unless made quiet, below), closed after `timeoutSeconds`,
  and an `ERROR` event with a 410 Status when the resourceVersion is older than the last compaction.
  A watch from a resourceVersion the server has not reached yet is accepted and carries nothing
  until the server's version passes it, as a real API server does without its watch cache.
- `POST /herald-fake/events`: JSON lines of scenario steps to apply now (see `apply`).
- `POST /herald-fake/generate`: the server makes Events itself at a steady rate (see `generate`),
  so that a benchmark can offer thousands a second without paying for a feeder; answered when done,
  with when each batch was created.

A bounded history (`FakeKube(max_changes=N)`, `--max-changes`): only the last N changes are kept.
Older ones are dropped with the Events they created (as the Event TTL would, but without a DELETED
change), a watch from a resourceVersion before them gets a 410 as after a compaction, and an open
watch that falls that far behind ends with the same 410 (as a real API server ends a watcher too
slow for its cache), so the server's memory stays flat however many Events it is offered.
Watch streams write every change ready at once in one chunk (many lines per chunk).

What it does not: authentication, other resources, field or label selectors, TLS. Fault injection
(`fail_next`, `cut_watches`, `silence_next_watches`, `compact`, `reset`, `restart`) is exposed on the Python object for tests.

Bookmarks: by default it sends one every `bookmark_interval_s` to watches that allow them. A real
kube-apiserver sends none for Events (they are not in its watch cache by default: a quiet watch of
Events carries nothing at all until its `timeoutSeconds` ends it); `FakeKube(bookmarks=False)` (or
`--no-bookmarks`) behaves like that.

Run it: `python -m herald_dev.fakekube --scenario FILE --kubeconfig OUT [--port N]`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

log = logging.getLogger("herald_dev.fakekube")

JsonObject = dict[str, Any]
_EVENTS_PATH = "/api/v1/events"
_ADMIN_PATH = "/herald-fake/events"
_GENERATE_PATH = "/herald-fake/generate"
GENERATED_AT = "fakekube.herald.dev/created-at"
"""The annotation on generated Events: `time.time()` when the server created it."""


@dataclass(frozen=True)
class _Change:
    rv: int
    type: str
    object: JsonObject


@dataclass
class _Fault:
    status: int
    remaining: int


@dataclass
class _State:
    changes: list[_Change] = field(default_factory=list)
    objects: dict[tuple[str, str], JsonObject] = field(default_factory=dict)
    rv: int = 0
    compacted_rv: int = 0
    watch_generation: int = 0
    faults: list[_Fault] = field(default_factory=list)
    expire_continue: bool = False
    silent_watches: int = 0
    trimmed_rv: int = 0
    """The last resourceVersion dropped from a bounded history (0: nothing dropped)."""


def generated_uid(seed: str, i: int) -> str:
    """The uid `FakeKube.generate` gives Event i of a run with this seed."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fakekube:{seed}:{i}"))


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_object(code: int, reason: str, message: str) -> JsonObject:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeKube:
    """The store and protocol logic; `serve()` puts it behind HTTP on 127.0.0.1."""

    def __init__(
        self,
        *,
        bookmark_interval_s: float = 1.0,
        bookmarks: bool = True,
        max_changes: int | None = None,
    ) -> None:
        self.bookmark_interval_s = bookmark_interval_s
        self.bookmarks = bookmarks
        """False: never send bookmarks, even when a watch allows them (a real server's Events)."""
        self.max_changes = max_changes
        """Keep only this many changes (and their Events); None: keep everything."""
        self._state = _State()
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- mutations ---------------------------------------------------------------------------

    def apply(self, change_type: str, obj: JsonObject) -> JsonObject:
        """Apply one change as the API server would and return the stored object.

        ADDED stores a new Event, filling in what the API server fills (name, uid, resourceVersion,
        creationTimestamp, timestamps, managedFields). MODIFIED merges the given top-level fields
        into the stored Event of the same namespace and name (as client-go's PATCH of a repeat
        does) and bumps lastTimestamp unless given. DELETED removes it (as the event TTL does).
        """
        with self._cond:
            state = self._state
            meta = obj.get("metadata") or {}
            involved = obj.get("involvedObject") or {}
            namespace = str(meta.get("namespace") or involved.get("namespace") or "default")
            if change_type == "ADDED":
                stored = self._new_event(obj, namespace)
            else:
                name = str(meta.get("name"))
                current = state.objects.get((namespace, name))
                if current is None:
                    raise KeyError(f"no Event {namespace}/{name} to {change_type.lower()}")
                stored = copy.deepcopy(current)
                if change_type == "MODIFIED":
                    for key, value in obj.items():
                        if key != "metadata":
                            stored[key] = copy.deepcopy(value)
                    if "lastTimestamp" not in obj:
                        stored["lastTimestamp"] = now_rfc3339()
                elif change_type != "DELETED":
                    raise ValueError(f"unknown change type {change_type!r}")
            state.rv += 1
            stored["metadata"]["resourceVersion"] = str(state.rv)
            stored_key = (namespace, str(stored["metadata"]["name"]))
            if change_type == "DELETED":
                state.objects.pop(stored_key, None)
            else:
                state.objects[stored_key] = stored
            # Stored objects are never changed in place (a change stores a new copy), so the change
            # log, the object map and the watch streams share them.
            state.changes.append(_Change(state.rv, change_type, stored))
            self._trim()
            self._cond.notify_all()
            return dict(stored)

    def _trim(self) -> None:
        """Drop the oldest changes past `max_changes` (in blocks, so that the list is not shifted
        on every change), and the Events they stored if still current."""
        state = self._state
        if self.max_changes is None or len(state.changes) <= self.max_changes * 1.1 + 100:
            return
        cut = len(state.changes) - self.max_changes
        for change in state.changes[:cut]:
            meta = change.object["metadata"]
            key = (meta["namespace"], meta["name"])
            if state.objects.get(key) is change.object:
                del state.objects[key]
        state.trimmed_rv = state.changes[cut - 1].rv
        state.compacted_rv = max(state.compacted_rv, state.trimmed_rv)
        del state.changes[:cut]

    def generate(
        self,
        templates: list[JsonObject],
        *,
        rate: float,
        count: int,
        seed: str,
        start: int = 0,
        tick_s: float = 0.01,
    ) -> JsonObject:
        """Create `count` Events, `rate` a second, in batches every `tick_s`; return when done.

        Event i (from `start`) is `templates[i % len(templates)]` with the name
        `<involvedObject.name>.<seed>-<i as 8 hex digits>`, the uid `generated_uid(seed, i)` and the
        annotation `GENERATED_AT` (when it was created, `time.time()`). The answer: `offered` (the
        rate reached, Events/s) and `batches`, `[first i, count, time.time()]` each."""
        if not templates or rate <= 0 or count < 0:
            raise ValueError("generate needs templates, a positive rate and a count")
        batches: list[list[float]] = []
        made = 0
        began = time.monotonic()
        first_at: float | None = None
        while made < count:
            elapsed = time.monotonic() - began
            due = min(count, int(rate * elapsed) + 1)
            if due > made:
                at = time.time()
                first_at = at if first_at is None else first_at
                stamp = f"{at:.6f}"
                rfc = now_rfc3339()
                with self._cond:
                    for i in range(start + made, start + due):
                        self._apply_generated(templates[i % len(templates)], i, seed, stamp, rfc)
                    self._trim()
                    self._cond.notify_all()
                batches.append([start + made, due - made, at])
                made = due
            if made < count:
                # to the next tick, or to the next Event if it is due later than that
                elapsed = time.monotonic() - began
                wake = max((elapsed // tick_s + 1) * tick_s, made / rate)
                time.sleep(max(0.0, wake - elapsed))
        span = max(time.time() - (first_at or time.time()), (count - 1) / rate, 1 / rate)
        return {"offered": count / span, "batches": batches}

    def _apply_generated(
        self, template: JsonObject, i: int, seed: str, stamp: str, rfc: str
    ) -> None:
        """Store one generated Event (the lock held). Templates are never changed: the stored
        Events share their nested fields, as stored objects are never changed in place."""
        state = self._state
        meta = template.get("metadata") or {}
        involved = template.get("involvedObject") or {}
        namespace = str(meta.get("namespace") or involved.get("namespace") or "default")
        name = f"{involved.get('name', 'object')}.{seed}-{i:08x}"
        state.rv += 1
        stored = {
            "kind": "Event",
            "apiVersion": "v1",
            "firstTimestamp": rfc,
            "lastTimestamp": rfc,
            "count": 1,
            "type": "Normal",
            "eventTime": None,
            "reportingComponent": "",
            "reportingInstance": "",
            **template,
            "metadata": {
                **meta,
                "name": name,
                "namespace": namespace,
                "uid": generated_uid(seed, i),
                "resourceVersion": str(state.rv),
                "creationTimestamp": rfc,
                "annotations": {**(meta.get("annotations") or {}), GENERATED_AT: stamp},
            },
        }
        state.objects[(namespace, name)] = stored
        state.changes.append(_Change(state.rv, "ADDED", stored))

    def _new_event(self, obj: JsonObject, namespace: str) -> JsonObject:
        stored = copy.deepcopy(obj)
        stored.setdefault("kind", "Event")
        stored.setdefault("apiVersion", "v1")
        meta = stored.setdefault("metadata", {})
        involved = stored.get("involvedObject") or {}
        meta["namespace"] = namespace
        if not meta.get("name"):
            meta["name"] = f"{involved.get('name', 'object')}.{time.time_ns():x}"
        if (namespace, meta["name"]) in self._state.objects:
            raise ValueError(f"Event {namespace}/{meta['name']} already exists")
        meta.setdefault("uid", str(uuid.uuid4()))
        now = now_rfc3339()
        meta.setdefault("creationTimestamp", now)
        meta.setdefault(
            "managedFields",
            [{"manager": "fakekube", "operation": "Update", "apiVersion": "v1", "time": now}],
        )
        stored.setdefault("firstTimestamp", now)
        stored.setdefault("lastTimestamp", stored["firstTimestamp"])
        stored.setdefault("count", 1)
        stored.setdefault("type", "Normal")
        stored.setdefault("eventTime", None)
        stored.setdefault("reportingComponent", "")
        stored.setdefault("reportingInstance", "")
        return stored

    def compact(self) -> int:
        """Forget history: any resourceVersion older than now is too old (410) from here on."""
        with self._cond:
            self._state.compacted_rv = self._state.rv
            return self._state.rv

    def reset(self, *, to: int = 0) -> None:
        """etcd wiped (`to=0`) or restored from a backup taken at resourceVersion `to`, behind the
        same URL: the Events and history after `to` are gone and resourceVersions go on from `to`.

        Nothing tells a client: open watches stay open and, like new watches from a resourceVersion
        above `to`, carry nothing until the server's version passes theirs (what a real API server
        without its watch cache does)."""
        with self._cond:
            state = self._state
            if not 0 <= to <= state.rv:
                raise ValueError(f"cannot reset to {to}: the server is at {state.rv}")
            state.objects = dict(self._snapshot(to, None))
            state.changes = [c for c in state.changes if c.rv <= to]
            state.rv = to
            state.compacted_rv = min(state.compacted_rv, to)
            self._cond.notify_all()

    def fail_next(self, status: int, *, count: int = 1, first: bool = False) -> None:
        """Answer the next `count` list or watch requests with this HTTP status (after the faults
        already queued, or before them if `first`)."""
        with self._cond:
            self._state.faults.insert(
                0 if first else len(self._state.faults), _Fault(status, count)
            )

    def expire_next_continue(self) -> None:
        """Answer the next list request that carries a continue token with 410 Expired."""
        with self._cond:
            self._state.expire_continue = True

    def silence_next_watches(self, count: int = 1) -> None:
        """The next `count` watch requests get their headers and then nothing at all, not even an
        end at their timeout, until cut (a connection dead behind a NAT or a stuck proxy)."""
        with self._cond:
            self._state.silent_watches += count

    def take_silence(self) -> bool:
        with self._cond:
            if self._state.silent_watches <= 0:
                return False
            self._state.silent_watches -= 1
            return True

    def wait_for_cut(self) -> None:
        """Block until the watches are cut (or the server stops)."""
        with self._cond:
            generation = self._state.watch_generation
            while self._state.watch_generation == generation:
                self._cond.wait()

    def cut_watches(self) -> None:
        """End every open watch stream now, without an error event (a dropped connection)."""
        with self._cond:
            self._state.watch_generation += 1
            self._cond.notify_all()

    @property
    def resource_version(self) -> int:
        with self._cond:
            return self._state.rv

    def events(self) -> list[JsonObject]:
        """The Events currently stored, in creation order."""
        with self._cond:
            return [copy.deepcopy(o) for o in self._state.objects.values()]

    # -- protocol ----------------------------------------------------------------------------

    def take_fault(self) -> int | None:
        with self._cond:
            faults = self._state.faults
            if not faults:
                return None
            fault = faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                faults.pop(0)
            return fault.status

    def list_page(
        self, *, namespace: str | None, limit: int, continue_token: str | None
    ) -> tuple[int, JsonObject]:
        with self._cond:
            state = self._state
            if continue_token:
                try:
                    token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                    snapshot_rv, start = int(token["rv"]), str(token["start"])
                except (binascii.Error, ValueError, KeyError, TypeError):
                    return 400, status_object(400, "BadRequest", "invalid continue token")
                if snapshot_rv < state.compacted_rv or state.expire_continue:
                    state.expire_continue = False
                    return 410, status_object(
                        410,
                        "Expired",
                        "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter.",
                    )
            else:
                snapshot_rv, start = state.rv, ""
            items = self._snapshot(snapshot_rv, namespace)
        keys = sorted(k for k in items if "/".join(k) > start)
        page_keys = keys[:limit] if limit > 0 else keys
        metadata: JsonObject = {"resourceVersion": str(snapshot_rv)}
        if len(page_keys) < len(keys):
            last = "/".join(page_keys[-1])
            raw = json.dumps({"rv": snapshot_rv, "start": last}).encode()
            metadata["continue"] = base64.urlsafe_b64encode(raw).decode()
            metadata["remainingItemCount"] = len(keys) - len(page_keys)
        page_items = []
        for k in page_keys:
            # list responses omit per-item kind and apiVersion
            page_items.append(
                {f: v for f, v in items[k].items() if f not in ("kind", "apiVersion")}
            )
        return 200, {
            "kind": "EventList",
            "apiVersion": "v1",
            "metadata": metadata,
            "items": page_items,
        }

    def _snapshot(self, rv: int, namespace: str | None) -> dict[tuple[str, str], JsonObject]:
        state = self._state
        if rv == state.rv:
            objects = state.objects
        elif state.trimmed_rv:
            # A bounded history cannot rebuild an older snapshot: the Events as they are now,
            # without those created after it.
            objects = {
                k: o
                for k, o in state.objects.items()
                if int(o["metadata"]["resourceVersion"]) <= rv
            }
        else:
            objects = {}
            for change in state.changes:
                if change.rv > rv:
                    break
                key = (change.object["metadata"]["namespace"], change.object["metadata"]["name"])
                if change.type == "DELETED":
                    objects.pop(key, None)
                else:
                    objects[key] = change.object
        return {k: v for k, v in objects.items() if namespace is None or k[0] == namespace}

    def watch(
        self,
        *,
        namespace: str | None,
        resource_version: str | None,
        bookmarks: bool,
        timeout_s: float,
    ) -> Iterator[JsonObject]:
        """Yield watch events until the timeout, a cut, or a 410."""
        for batch in self.watch_batches(
            namespace=namespace,
            resource_version=resource_version,
            bookmarks=bookmarks,
            timeout_s=timeout_s,
        ):
            yield from batch

    def watch_batches(
        self,
        *,
        namespace: str | None,
        resource_version: str | None,
        bookmarks: bool,
        timeout_s: float,
    ) -> Iterator[list[JsonObject]]:
        """`watch`, every change ready at once in one list."""
        bookmarks = bookmarks and self.bookmarks
        deadline = time.monotonic() + timeout_s
        generation, start_rv, initial = self._watch_start(namespace, resource_version)
        if initial:
            yield initial
        if initial and initial[0]["type"] == "ERROR":
            return
        sent_rv = start_rv
        next_bookmark = time.monotonic() + self.bookmark_interval_s
        while True:
            with self._cond:
                expired = self._fallen_behind(sent_rv)
                if expired is not None:
                    break
                pending = [
                    c
                    for c in self._state.changes[self._index_after(sent_rv) :]
                    if namespace is None or c.object["metadata"]["namespace"] == namespace
                ]
                last_rv = self._state.rv
                if not pending:
                    now = time.monotonic()
                    wake = min(deadline, next_bookmark) if bookmarks else deadline
                    if self._state.watch_generation != generation or now >= deadline:
                        return
                    if now < wake:
                        self._cond.wait(timeout=wake - now)
                        if self._state.watch_generation != generation:
                            return
            if pending:
                yield [{"type": change.type, "object": change.object} for change in pending]
            sent_rv = max(sent_rv, last_rv)
            if bookmarks and time.monotonic() >= next_bookmark:
                next_bookmark = time.monotonic() + self.bookmark_interval_s
                yield [
                    {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": "Event",
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": str(sent_rv)},
                        },
                    }
                ]
            if time.monotonic() >= deadline:
                return
        if expired is not None:
            yield [expired]

    def _watch_start(
        self, namespace: str | None, resource_version: str | None
    ) -> tuple[int, int, list[JsonObject]]:
        """The watch generation, the resourceVersion to watch from, and what to send first (the
        stored Events for a watch from "most recent", or a 410 for one older than compaction)."""
        with self._cond:
            state = self._state
            if resource_version in (None, "", "0"):
                # "Start at most recent": synthetic ADDED for every stored object, then changes.
                initial = [
                    {"type": "ADDED", "object": o}
                    for (ns, _), o in state.objects.items()
                    if namespace is None or ns == namespace
                ]
                return state.watch_generation, state.rv, initial
            start_rv = int(resource_version or 0)
            if start_rv < state.compacted_rv:
                message = f"too old resource version: {start_rv} ({state.compacted_rv})"
                expired = {"type": "ERROR", "object": status_object(410, "Expired", message)}
                return state.watch_generation, start_rv, [expired]
            return state.watch_generation, start_rv, []

    def _fallen_behind(self, sent_rv: int) -> JsonObject | None:
        """The 410 for a watch whose next changes were dropped from a bounded history (the lock
        held), else None."""
        if sent_rv >= self._state.trimmed_rv:
            return None
        message = f"too old resource version: {sent_rv} ({self._state.trimmed_rv})"
        return {"type": "ERROR", "object": status_object(410, "Expired", message)}

    def _index_after(self, rv: int) -> int:
        """Index of the first change with a resourceVersion above rv (changes are rv-ordered)."""
        changes = self._state.changes
        lo, hi = 0, len(changes)
        while lo < hi:
            mid = (lo + hi) // 2
            if changes[mid].rv <= rv:
                lo = mid + 1
            else:
                hi = mid
        return lo

    # -- serving -----------------------------------------------------------------------------

    def serve(self, *, port: int = 0) -> str:
        """Start serving on 127.0.0.1 in a daemon thread; return the base URL."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fakekube", daemon=True
        )
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "not serving"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        self.cut_watches()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart(self, *, down_s: float = 1.0, forbidden: int = 0) -> None:
        """Stop serving (open watches end, connections are refused), then serve on the same port.
        The store survives, as etcd does when the API server restarts. `forbidden`: answer the
        first requests after it with 403, as a real API server does while its RBAC warms up."""
        port = int(self._server.server_address[1]) if self._server else 0
        self.stop()
        if forbidden:
            self.fail_next(403, count=forbidden, first=True)
        time.sleep(down_s)
        self.serve(port=port)

    def write_kubeconfig(self, path: Path, *, context: str = "fake") -> Path:
        """Write a kubeconfig whose one context points at this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": "fake-token"}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
            "current-context": context,
        }
        path.write_text(json.dumps(config, indent=2))  # JSON is valid YAML
        return path

    def play(self, steps: list[JsonObject]) -> threading.Thread:
        """Apply scenario steps in a background thread, sleeping `after_s` before each."""

        def run() -> None:
            for step in steps:
                time.sleep(float(step.get("after_s", 0)))
                self.apply(step.get("type", "ADDED"), step["object"])

        thread = threading.Thread(target=run, name="fakekube-scenario", daemon=True)
        thread.start()
        return thread


def load_scenario(path: Path) -> list[JsonObject]:
    """A scenario is JSON lines: `{"after_s": 0.5, "type": "ADDED", "object": {...}}`."""
    steps = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            steps.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not JSON: {e}") from e
    return steps


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKube
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        namespace = _namespace_of(url.path)
        if url.path != _EVENTS_PATH and namespace is None:
            self._send_json(404, status_object(404, "NotFound", f"no route for {url.path}"))
            return
        fault = self.fake.take_fault()
        if fault is not None:
            reason = HTTPStatus(fault).phrase.replace(" ", "")
            self._send_json(fault, status_object(fault, reason, f"injected {fault}"))
            return
        if query.get("watch") in ("true", "1"):
            self._watch(namespace, query)
            return
        status, body = self.fake.list_page(
            namespace=namespace,
            limit=int(query.get("limit", "0") or 0),
            continue_token=query.get("continue"),
        )
        self._send_json(status, body)

    def do_POST(self) -> None:
        if urlparse(self.path).path == _GENERATE_PATH:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            try:
                answer = self.fake.generate(
                    request["templates"],
                    rate=float(request["rate"]),
                    count=int(request["count"]),
                    seed=str(request["seed"]),
                    start=int(request.get("start", 0)),
                )
            except (KeyError, TypeError, ValueError) as e:
                self._send_json(400, status_object(400, "BadRequest", f"bad generate: {e}"))
                return
            self._send_json(200, answer)
            return
        if urlparse(self.path).path != _ADMIN_PATH:
            self._send_json(404, status_object(404, "NotFound", self.path))
            return
        length = int(self.headers.get("Content-Length", "0"))
        applied = []
        for line in self.rfile.read(length).decode().splitlines():
            if line.strip():
                step = json.loads(line)
                applied.append(self.fake.apply(step.get("type", "ADDED"), step["object"]))
        self._send_json(201, {"applied": len(applied)})

    def _watch(self, namespace: str | None, query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        # The connection is closed after a watch: said, so that a client does not send its next
        # request on it while it closes (a real API server keeps it open instead).
        self.send_header("Connection", "close")
        self.end_headers()
        if self.fake.take_silence():
            self.fake.wait_for_cut()
            self.close_connection = True
            return
        stream = self.fake.watch_batches(
            namespace=namespace,
            resource_version=query.get("resourceVersion"),
            bookmarks=query.get("allowWatchBookmarks") in ("true", "1"),
            timeout_s=float(query.get("timeoutSeconds", "1800")),
        )
        try:
            for batch in stream:
                if not batch:
                    continue
                data = b"".join(
                    json.dumps(event, separators=(",", ":")).encode() + b"\n" for event in batch
                )
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            log.debug("watch client went away")
        self.close_connection = True

    def _send_json(self, status: int, body: JsonObject) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _namespace_of(path: str) -> str | None:
    parts = path.strip("/").split("/")
    if len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "events":
        return parts[3]
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m herald_dev.fakekube", description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scenario", type=Path, help="JSON-lines scenario to play once started")
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="where to write a kubeconfig"
    )
    parser.add_argument("--bookmark-interval-s", type=float, default=1.0)
    parser.add_argument(
        "--max-changes",
        type=int,
        help="keep only the last N changes and their Events (older resourceVersions: 410)",
    )
    parser.add_argument(
        "--no-bookmarks",
        action="store_true",
        help="send no bookmarks, as a real API server does for Events",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fakekube %(message)s")
    fake = FakeKube(
        bookmark_interval_s=args.bookmark_interval_s,
        bookmarks=not args.no_bookmarks,
        max_changes=args.max_changes,
    )
    url = fake.serve(port=args.port)
    fake.write_kubeconfig(args.kubeconfig)
    log.info("serving core/v1 Events on %s; kubeconfig at %s", url, args.kubeconfig)
    if args.scenario:
        steps = load_scenario(args.scenario)
        fake.play(steps).join()
        log.info("scenario %s played: %d steps", args.scenario, len(steps))
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()

"""How far a watch may be checkpointed: never past a record the broker has not acknowledged.

The watch loop reports, in order, every record it hands to the producer (with the resourceVersion of
the watch position it stands for, or none for items of a list, which come in no particular order)
and every position that needs no record (a bookmark, the end of a list). The producer's delivery
reports arrive later, in any order and from another thread. The checkpoint is the newest position
whose records, and all records before it, were acknowledged. A failed record stops the checkpoint
for good and marks the tracker failed: the watch must restart from the checkpoint, which re-reads
everything after it (at-least-once), so nothing is lost.

resourceVersions are opaque in the Kubernetes API but, from etcd, are increasing integers; `newer`
compares them as such when they are, and otherwise says it cannot tell.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass
class _Entry:
    ticket: int
    resource_version: str | None
    acked: bool


class Progress:
    def __init__(self, checkpoint: str | None = None) -> None:
        self._lock = threading.Lock()
        self._entries: deque[_Entry] = deque()
        self._pending: dict[int, _Entry] = {}
        self._next_ticket = 0
        self._checkpoint = checkpoint
        self._failed: str | None = None

    def sent(self, resource_version: str | None) -> int:
        """A record was handed to the producer; returns its ticket for `acknowledged`/`failed`."""
        with self._lock:
            ticket = self._next_ticket
            self._next_ticket += 1
            entry = _Entry(ticket, resource_version, acked=False)
            self._entries.append(entry)
            self._pending[ticket] = entry
            return ticket

    def reached(self, resource_version: str) -> None:
        """A position with no record of its own (bookmark, end of list)."""
        with self._lock:
            self._entries.append(_Entry(-1, resource_version, acked=True))
            self._advance()

    def acknowledged(self, ticket: int) -> None:
        with self._lock:
            entry = self._pending.pop(ticket, None)
            if entry is not None:
                entry.acked = True
                self._advance()

    def failed(self, ticket: int, error: str) -> None:
        with self._lock:
            if self._pending.pop(ticket, None) is not None and self._failed is None:
                self._failed = error  # a report from before the last restart is moot

    def _advance(self) -> None:
        if self._failed is not None:
            return
        while self._entries and self._entries[0].acked:
            entry = self._entries.popleft()
            if entry.resource_version is not None:
                self._checkpoint = entry.resource_version

    @property
    def checkpoint(self) -> str | None:
        with self._lock:
            return self._checkpoint

    @property
    def failure(self) -> str | None:
        with self._lock:
            return self._failed

    @property
    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._pending)

    def restart(self) -> str | None:
        """Forget everything in flight (a restart from the checkpoint re-reads it); return the checkpoint."""
        with self._lock:
            self._entries.clear()
            self._pending.clear()
            self._failed = None
            return self._checkpoint

    def forget(self) -> None:
        """Forget the checkpoint too: the server it came from no longer holds that history (etcd
        wiped or restored). The next position `reached` becomes the checkpoint, even a lower one."""
        with self._lock:
            self._entries.clear()
            self._pending.clear()
            self._failed = None
            self._checkpoint = None


def newer(resource_version: str | None, than: str | None) -> bool:
    """True unless `resource_version` is known to be at or before `than` (both integers)."""
    if resource_version is None or than is None:
        return True
    try:
        return int(resource_version) > int(than)
    except ValueError:
        return True

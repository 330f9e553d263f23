"""Snapshot versions: which store change a node's routing snapshot and caches reflect.

Every committed change to numbers, applications, organizations or accounts gets the next
version (PostgreSQL: the ``change_version`` counter, migration 0008). A node's snapshot is at
version ``applied`` once every change up to it has been applied; ``known`` is the highest
version the node has heard of (a notification, a version check). ``/health`` reports both and
the lag. On SQLite (one node) the version counts the changes applied in process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SnapshotVersion:
    """The version a node's snapshot is at, and what it knows is committed beyond it."""

    engine: str = "sqlite"
    applied: int = 0
    known: int = 0
    behind_since: float | None = None  # monotonic time ``known`` first exceeded ``applied``
    last_delay: float | None = None  # commit → applied, seconds, of the last notified change
    reloads: int = 0
    listener: str = "local"  # local (SQLite) | connected | reconnecting

    def heard(self, version: int) -> None:
        """A change up to ``version`` is committed."""
        if version > self.known:
            self.known = version
        if self.known > self.applied and self.behind_since is None:
            self.behind_since = time.monotonic()

    def reached(self, version: int, committed_at: float | None = None) -> None:
        """Every change up to ``version`` is applied (``committed_at``: the last one's commit)."""
        self.applied = max(self.applied, version)
        self.known = max(self.known, self.applied)
        if committed_at is not None:
            self.last_delay = max(0.0, time.time() - committed_at)
        if self.applied >= self.known:
            self.behind_since = None

    def local_change(self) -> None:
        """SQLite: one more change applied in process."""
        self.reached(self.applied + 1)

    def health(self) -> dict[str, Any]:
        behind = self.behind_since
        return {
            "engine": self.engine,
            "snapshot_version": self.applied,
            "store_version": self.known,
            "lag_versions": self.known - self.applied,
            "lag_seconds": round(time.monotonic() - behind, 3) if behind is not None else 0.0,
            "last_change_delay_ms": (
                round(self.last_delay * 1000, 1) if self.last_delay is not None else None
            ),
            "reloads": self.reloads,
            "listener": self.listener,
        }

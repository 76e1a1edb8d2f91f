"""The notification log: what was last sent to each integration for each group.

For every aggregation group and integration (``receiver/kind/index``) the log keeps the
fingerprints of the firing and resolved alerts of the last delivered notification and
when it was delivered, as Alertmanager's ``nflog`` does. The dispatcher reads it to
decide whether a group needs a new notification (:func:`needs_update`, Alertmanager's
``DedupStage.needsUpdate``); the outbox writes it when a notification is delivered.

The log lives in the same SQLite database as the alert store and the outbox
(:class:`Database`), so a decision and its outbox entry commit together.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

DEFAULT_RETENTION_S = 120 * 3600.0


class Database:
    """One SQLite connection shared by the alerting tables, with nestable transactions.

    ``path=None`` keeps everything in memory (nothing survives the process). A file is
    opened in WAL mode with full sync, so a committed transaction survives a crash.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None, timeout=30
        )
        if path is not None:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
        self.lock = threading.RLock()
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one transaction (nested calls join the outer one)."""
        with self.lock:
            if self._depth == 0:
                self.conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self.conn
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self.conn.execute("COMMIT")

    def query(self, sql: str, params: Iterable[object] = ()) -> list[tuple[Any, ...]]:
        """Rows of one read-only statement."""
        with self.lock:
            return list(self.conn.execute(sql, tuple(params)).fetchall())

    def close(self) -> None:
        with self.lock:
            self.conn.close()


@dataclass(frozen=True, slots=True)
class NflogEntry:
    """The last notification delivered for one group to one integration."""

    group_key: str
    integration: str
    firing: frozenset[str]
    resolved: frozenset[str]
    timestamp: float


def needs_update(
    entry: NflogEntry | None,
    firing: frozenset[str],
    resolved: frozenset[str],
    *,
    send_resolved: bool,
    repeat_interval_s: float,
    now: float,
) -> bool:
    """Whether a group with these firing/resolved fingerprints needs a notification,
    given the last one sent (Alertmanager's ``DedupStage.needsUpdate``)."""
    if entry is None:
        return len(firing) > 0
    if not firing <= entry.firing:
        return True
    if not firing:
        # Everything resolved: notify (even without send_resolved) so the log forgets
        # the firing alerts, unless the receiver never heard of them.
        return len(entry.firing) > 0
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.timestamp < now - repeat_interval_s


class NotificationLog:
    """Per group key and integration key, the last delivered notification.

    Entries older than ``retention_s`` (Alertmanager's default: 120 h) are removed by
    :meth:`gc`.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        retention_s: float = DEFAULT_RETENTION_S,
    ) -> None:
        self._db = db
        self._clock = clock
        self.retention_s = retention_s
        with db.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS nflog ("
                " group_key TEXT NOT NULL, integration TEXT NOT NULL,"
                " firing TEXT NOT NULL, resolved TEXT NOT NULL, timestamp REAL NOT NULL,"
                " PRIMARY KEY (group_key, integration))"
            )

    def get(self, group_key: str, integration: str) -> NflogEntry | None:
        """The entry for one group and integration, or None if nothing was sent yet."""
        rows = self._db.query(
            "SELECT firing, resolved, timestamp FROM nflog WHERE group_key=? AND integration=?",
            (group_key, integration),
        )
        if not rows:
            return None
        firing, resolved, timestamp = rows[0]
        return NflogEntry(
            group_key,
            integration,
            frozenset(json.loads(str(firing))),
            frozenset(json.loads(str(resolved))),
            float(timestamp),
        )

    def log(
        self,
        group_key: str,
        integration: str,
        firing: Iterable[str],
        resolved: Iterable[str],
        now: float,
    ) -> None:
        """Record a delivered notification (joins the caller's transaction if any)."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO nflog VALUES (?, ?, ?, ?, ?)",
                (
                    group_key,
                    integration,
                    json.dumps(sorted(firing)),
                    json.dumps(sorted(resolved)),
                    now,
                ),
            )

    def entries(self) -> list[NflogEntry]:
        """Every entry, ordered by group key and integration."""
        rows = self._db.query(
            "SELECT group_key, integration, firing, resolved, timestamp FROM nflog"
            " ORDER BY group_key, integration"
        )
        return [
            NflogEntry(
                str(g),
                str(i),
                frozenset(json.loads(str(f))),
                frozenset(json.loads(str(r))),
                float(t),
            )
            for g, i, f, r, t in rows
        ]

    def gc(self, now: float | None = None) -> int:
        """Remove entries older than the retention; returns how many were removed."""
        cutoff = (self._clock() if now is None else now) - self.retention_s
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM nflog WHERE timestamp < ?", (cutoff,)).rowcount


__all__ = ["Database", "NflogEntry", "NotificationLog", "needs_update"]

"""The persistent outbox: notifications waiting to be delivered, kept in SQLite.

The dispatcher writes each notification it decides to send into the outbox inside the
same transaction as the decision, keyed by group key and integration key. The delivery
side (:meth:`Outbox.deliver_due`) sends the entries of each (group, integration) queue
strictly in order: a retryable failure is retried with exponential backoff (1 s doubling
to 5 min, with jitter) and holds back the entries behind it; a non-retryable one is
dropped (recorded as failed and counted). A delivered entry is marked so, together with
its notification-log update, in one transaction right after the notifier returns, so an
entry is delivered again after a restart only if the process died during the send.

An entry without a notification ("silent") updates the notification log without sending:
Alertmanager does that when every alert of a group resolved and the integration has
``send_resolved: false``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from inferwatch._errors import NotifyError
from inferwatch.alerting.alert import Alert, Notification
from inferwatch.alerting.nflog import Database, NotificationLog
from inferwatch.alerting.notifiers.base import Notifier

log = logging.getLogger(__name__)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def notification_to_json(n: Notification) -> str:
    """Serialize a notification with its alerts (times as Unix seconds)."""
    return json.dumps(
        {
            "receiver": n.receiver,
            "status": n.status,
            "alerts": [
                {
                    "labels": dict(a.labels),
                    "annotations": dict(a.annotations),
                    "starts_at": a.starts_at,
                    "ends_at": a.ends_at,
                    "generator_url": a.generator_url,
                }
                for a in n.alerts
            ],
            "group_labels": dict(n.group_labels),
            "common_labels": dict(n.common_labels),
            "common_annotations": dict(n.common_annotations),
            "external_url": n.external_url,
            "group_key": n.group_key,
            "now": n.now,
            "truncated_alerts": n.truncated_alerts,
        },
        sort_keys=True,
    )


def notification_from_json(text: str) -> Notification:
    """The inverse of :func:`notification_to_json`."""
    d: dict[str, Any] = json.loads(text)
    return Notification(
        receiver=d["receiver"],
        status=d["status"],
        alerts=tuple(Alert(**a) for a in d["alerts"]),
        group_labels=d["group_labels"],
        common_labels=d["common_labels"],
        common_annotations=d["common_annotations"],
        external_url=d["external_url"],
        group_key=d["group_key"],
        now=d["now"],
        truncated_alerts=d["truncated_alerts"],
    )


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One queued notification (``notification`` is None for a silent entry)."""

    id: int
    group_key: str
    integration: str
    notification: Notification | None
    firing: frozenset[str]
    resolved: frozenset[str]
    state: str
    attempts: int
    next_attempt_at: float
    created_at: float
    last_error: str


_COLUMNS = (
    "id, group_key, integration, notification, firing, resolved, state, attempts,"
    " next_attempt_at, created_at, last_error"
)


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    i, g, integ, n, f, r, state, attempts, next_at, created, err = row
    return OutboxEntry(
        id=i,
        group_key=g,
        integration=integ,
        notification=notification_from_json(n) if n is not None else None,
        firing=frozenset(json.loads(f)),
        resolved=frozenset(json.loads(r)),
        state=state,
        attempts=attempts,
        next_attempt_at=next_at,
        created_at=created,
        last_error=err,
    )


class Outbox:
    """Queued notifications per (group key, integration key), delivered in order.

    ``jitter`` scales each backoff by a random factor in [0.5, 1]; tests turn it off.
    """

    def __init__(
        self,
        db: Database,
        nflog: NotificationLog,
        *,
        clock: Callable[[], float],
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        jitter: bool = True,
    ) -> None:
        self._db = db
        self._nflog = nflog
        self._clock = clock
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.jitter = jitter
        self._deliver_lock = threading.Lock()
        self._count_lock = threading.Lock()
        #: The most queues sent to at the same time.
        self.max_parallel = 8
        self.sent_total: Counter[str] = Counter()
        self.failed_total: Counter[tuple[str, str]] = Counter()
        with db.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS outbox ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT, group_key TEXT NOT NULL,"
                " integration TEXT NOT NULL, notification TEXT, firing TEXT NOT NULL,"
                " resolved TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,"
                " next_attempt_at REAL NOT NULL, created_at REAL NOT NULL,"
                " last_error TEXT NOT NULL)"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS outbox_queue ON outbox (state, group_key, integration)"
            )

    def enqueue(
        self,
        group_key: str,
        integration: str,
        notification: Notification | None,
        firing: Iterable[str],
        resolved: Iterable[str],
        now: float,
    ) -> int:
        """Queue one entry (joins the caller's transaction); returns its id."""
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO outbox (group_key, integration, notification, firing, resolved,"
                " state, attempts, next_attempt_at, created_at, last_error)"
                " VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, '')",
                (
                    group_key,
                    integration,
                    notification_to_json(notification) if notification is not None else None,
                    json.dumps(sorted(firing)),
                    json.dumps(sorted(resolved)),
                    PENDING,
                    now,
                    now,
                ),
            )
            return int(cursor.lastrowid or 0)

    def entries(self, state: str | None = None) -> list[OutboxEntry]:
        """Entries in queue order, all or those in one state."""
        where, params = ("WHERE state=?", (state,)) if state else ("", ())
        rows = self._db.query(f"SELECT {_COLUMNS} FROM outbox {where} ORDER BY id", params)
        return [_entry(r) for r in rows]

    def last_pending(self, group_key: str, integration: str) -> OutboxEntry | None:
        """The newest undelivered entry of one queue, if any."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM outbox WHERE state=? AND group_key=? AND integration=?"
            " ORDER BY id DESC LIMIT 1",
            (PENDING, group_key, integration),
        )
        return _entry(rows[0]) if rows else None

    def pending_count(self) -> int:
        rows = self._db.query("SELECT COUNT(*) FROM outbox WHERE state=?", (PENDING,))
        return int(rows[0][0])

    def _heads(self) -> list[OutboxEntry]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM outbox WHERE id IN (SELECT MIN(id) FROM outbox"
            " WHERE state=? GROUP BY group_key, integration) ORDER BY id",
            (PENDING,),
        )
        return [_entry(r) for r in rows]

    def next_due(self) -> float | None:
        """When the earliest queue head is due, or None if nothing is pending."""
        heads = self._heads()
        return min((h.next_attempt_at for h in heads), default=None)

    def retry_now(self, now: float) -> None:
        """Make every pending entry due at ``now`` (after a restart, try at once)."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET next_attempt_at=? WHERE state=? AND next_attempt_at>?",
                (now, PENDING, now),
            )

    def backoff(self, attempts: int) -> float:
        """The wait after ``attempts`` failed attempts."""
        delay: float = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (attempts - 1))
        if self.jitter:
            delay *= random.uniform(0.5, 1.0)
        return delay

    def deliver_due(self, notifiers: Mapping[str, Notifier], now: float | None = None) -> int:
        """Send every queue head that is due, repeating while queues advance; returns
        the number of entries delivered. ``notifiers`` maps integration keys.

        Queues are sent concurrently (at most :attr:`max_parallel` at once), each in its
        own order, so a slow or hanging receiver holds back only its own queues: while
        it hangs, entries that become due for other queues go out at once.
        """
        delivered = 0
        with self._deliver_lock, ThreadPoolExecutor(self.max_parallel) as pool:
            blocked: set[tuple[str, str]] = set()
            in_flight: dict[Future[str], tuple[str, str]] = {}
            while True:
                t = self._clock() if now is None else now
                busy = blocked | set(in_flight.values())
                for head in self._heads():
                    queue = (head.group_key, head.integration)
                    if head.next_attempt_at <= t and queue not in busy:
                        notifier = notifiers.get(head.integration)
                        in_flight[pool.submit(self._attempt, head, notifier, t)] = queue
                        busy.add(queue)
                if not in_flight:
                    return delivered
                # Look for newly due entries every 50 ms while sends are in flight.
                done, _ = wait(
                    in_flight,
                    timeout=None if now is not None else 0.05,
                    return_when=FIRST_COMPLETED,
                )
                for future in done:
                    queue = in_flight.pop(future)
                    outcome = future.result()
                    if outcome == DELIVERED:
                        delivered += 1
                    elif outcome == PENDING:
                        blocked.add(queue)

    def _attempt(self, entry: OutboxEntry, notifier: Notifier | None, now: float) -> str:
        """Try one entry; returns its new state (pending: retry later)."""
        kind = entry.integration.split("/")[-2] if entry.integration.count("/") >= 2 else ""
        if notifier is None:
            self._fail(entry, kind, "unknown_integration", "integration no longer configured")
            return FAILED
        kind = notifier.kind
        if entry.notification is not None:
            try:
                notifier.notify(entry.notification)
            except NotifyError as exc:
                if not exc.retryable:
                    self._fail(entry, kind, "non_retryable", str(exc))
                    return FAILED
                self._retry(entry, kind, "retryable", str(exc), now)
                return PENDING
            except Exception as exc:
                log.exception("notifier %s raised", entry.integration)
                self._retry(entry, kind, "other", repr(exc), now)
                return PENDING
            with self._count_lock:
                self.sent_total[kind] += 1
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state=?, attempts=attempts+1 WHERE id=?", (DELIVERED, entry.id)
            )
            self._nflog.log(entry.group_key, entry.integration, entry.firing, entry.resolved, now)
        return DELIVERED

    def _retry(self, entry: OutboxEntry, kind: str, reason: str, error: str, now: float) -> None:
        attempts = entry.attempts + 1
        with self._count_lock:
            self.failed_total[(kind, reason)] += 1
        delay = self.backoff(attempts)
        log.warning(
            "notify %s for %s failed (attempt %d), retrying in %.1fs: %s",
            entry.integration,
            entry.group_key,
            attempts,
            delay,
            error,
        )
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET attempts=?, next_attempt_at=?, last_error=? WHERE id=?",
                (attempts, now + delay, error, entry.id),
            )

    def _fail(self, entry: OutboxEntry, kind: str, reason: str, error: str) -> None:
        with self._count_lock:
            self.failed_total[(kind, reason)] += 1
        log.error(
            "notify %s for %s failed, dropping the notification: %s",
            entry.integration,
            entry.group_key,
            error,
        )
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE outbox SET state=?, attempts=attempts+1, last_error=? WHERE id=?",
                (FAILED, error, entry.id),
            )

    def gc(self, before: float) -> int:
        """Remove delivered and failed entries created before ``before``."""
        with self._db.transaction() as conn:
            return conn.execute(
                "DELETE FROM outbox WHERE state!=? AND created_at<?", (PENDING, before)
            ).rowcount


__all__ = ["Outbox", "OutboxEntry", "notification_from_json", "notification_to_json"]

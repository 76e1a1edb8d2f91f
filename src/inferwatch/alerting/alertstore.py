"""The alerts the dispatcher has received, merged by fingerprint as Alertmanager does.

Each received alert is normalized the way Alertmanager's ``POST /api/v2/alerts`` does
(a missing start becomes the end or now; a missing end becomes now + ``resolve_timeout``
and marks the alert as timing out), then merged with the stored alert of the same
fingerprint when their activity overlaps (``types.Alert.Merge``). Alerts are kept in
SQLite so firing alerts survive a restart; resolved ones are removed by :meth:`gc`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.nflog import Database

DEFAULT_RESOLVE_TIMEOUT_S = 300.0
RESOLVED_RETENTION_S = 1800.0


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored: ``ends_at`` is always set; ``timeout`` says it was derived
    from ``resolve_timeout`` rather than given by the sender."""

    alert: Alert
    updated_at: float
    timeout: bool = False

    @property
    def fingerprint(self) -> str:
        return self.alert.fingerprint


def merge(old: StoredAlert, new: StoredAlert) -> StoredAlert:
    """Alertmanager's ``Alert.Merge``: the younger alert wins, the earliest start stays,
    and an explicit end that is later than a timeout end is kept."""
    if new.updated_at < old.updated_at:
        old, new = new, old
    ends_at = new.alert.ends_at
    starts_at = min(old.alert.starts_at, new.alert.starts_at)
    o_end = old.alert.ends_at
    n_end = new.alert.ends_at
    assert o_end is not None and n_end is not None
    if new.alert.resolved(new.updated_at):
        if old.alert.resolved(new.updated_at) and o_end > n_end:
            ends_at = o_end
    elif o_end > n_end and not old.timeout:
        ends_at = o_end
    return replace(new, alert=replace(new.alert, starts_at=starts_at, ends_at=ends_at))


def normalize(alert: Alert, now: float, resolve_timeout_s: float) -> StoredAlert:
    """Fill a received alert's missing times as Alertmanager's API does."""
    starts_at = alert.starts_at
    if not starts_at:
        starts_at = alert.ends_at if alert.ends_at else now
    timeout = not alert.ends_at
    ends_at = now + resolve_timeout_s if timeout else alert.ends_at
    return StoredAlert(replace(alert, starts_at=starts_at, ends_at=ends_at), now, timeout)


def _overlaps(old: StoredAlert, new: StoredAlert) -> bool:
    o_start, o_end = old.alert.starts_at, old.alert.ends_at or 0.0
    n_start, n_end = new.alert.starts_at, new.alert.ends_at or 0.0
    return (o_start < n_end < o_end) or (o_start < n_start < o_end)


class AlertStore:
    """Received alerts by fingerprint, persisted in the ``alerts`` table of ``db``."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], float],
        resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
    ) -> None:
        self._db = db
        self._clock = clock
        self.resolve_timeout_s = resolve_timeout_s
        self._alerts: dict[str, StoredAlert] = {}
        with db.transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS alerts ("
                " fingerprint TEXT PRIMARY KEY, labels TEXT NOT NULL,"
                " annotations TEXT NOT NULL, starts_at REAL NOT NULL, ends_at REAL NOT NULL,"
                " generator_url TEXT NOT NULL, updated_at REAL NOT NULL, timeout INTEGER NOT NULL)"
            )
            rows = conn.execute(
                "SELECT labels, annotations, starts_at, ends_at, generator_url, updated_at,"
                " timeout FROM alerts"
            ).fetchall()
        for labels, annots, starts_at, ends_at, url, updated_at, timeout in rows:
            alert = Alert(
                labels=json.loads(labels),
                annotations=json.loads(annots),
                starts_at=starts_at,
                ends_at=ends_at,
                generator_url=url,
            )
            self._alerts[alert.fingerprint] = StoredAlert(alert, updated_at, bool(timeout))

    def put(self, alerts: Iterable[Alert], now: float | None = None) -> list[StoredAlert]:
        """Normalize, merge and store received alerts; returns the stored results."""
        now = self._clock() if now is None else now
        stored: list[StoredAlert] = []
        with self._db.transaction() as conn:
            for alert in alerts:
                new = normalize(alert, now, self.resolve_timeout_s)
                old = self._alerts.get(new.fingerprint)
                if old is not None and _overlaps(old, new):
                    new = merge(old, new)
                self._write(conn, new)
                self._alerts[new.fingerprint] = new
                stored.append(new)
        return stored

    @staticmethod
    def _write(conn: object, item: StoredAlert) -> None:
        a = item.alert
        conn.execute(  # type: ignore[attr-defined]
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.fingerprint,
                json.dumps(dict(a.labels), sort_keys=True),
                json.dumps(dict(a.annotations), sort_keys=True),
                a.starts_at,
                a.ends_at,
                a.generator_url,
                item.updated_at,
                int(item.timeout),
            ),
        )

    def get(self, fingerprint: str) -> StoredAlert | None:
        with self._db.lock:
            return self._alerts.get(fingerprint)

    def alerts(self) -> list[StoredAlert]:
        """Every stored alert (firing and recently resolved)."""
        with self._db.lock:
            return list(self._alerts.values())

    def firing(self, now: float) -> list[Alert]:
        """The alerts not resolved at ``now``."""
        with self._db.lock:
            return [s.alert for s in self._alerts.values() if not s.alert.resolved(now)]

    def delete_if_not_modified(self, items: Sequence[StoredAlert]) -> None:
        """Remove alerts unless they were updated since ``items`` were read."""
        with self._db.transaction() as conn:
            for item in items:
                current = self._alerts.get(item.fingerprint)
                if current is not None and current.updated_at == item.updated_at:
                    conn.execute("DELETE FROM alerts WHERE fingerprint=?", (item.fingerprint,))
                    del self._alerts[item.fingerprint]

    def gc(self, now: float | None = None, retention_s: float = RESOLVED_RETENTION_S) -> int:
        """Remove alerts resolved more than ``retention_s`` ago; returns the count."""
        now = self._clock() if now is None else now
        old = [
            s
            for s in self.alerts()
            if s.alert.ends_at is not None and s.alert.ends_at < now - retention_s
        ]
        self.delete_if_not_modified(old)
        return len(old)


__all__ = ["AlertStore", "StoredAlert", "merge", "normalize"]

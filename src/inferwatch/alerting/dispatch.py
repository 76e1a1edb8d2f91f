"""The dispatcher: alerts into aggregation groups, groups into queued notifications.

Each alert goes to the aggregation groups of the routes it matches (one group per route
and set of group labels). A new group waits ``group_wait`` before its first flush (none
if its alert started longer ago than that and the group never flushed), then flushes
every ``group_interval``. A flush removes inhibited and silenced alerts, and for each
integration of the route's receiver decides with Alertmanager's ``needsUpdate`` whether
a notification is due: against the newest undelivered outbox entry if there is one
(only a change queues another), else against the notification log (where
``repeat_interval`` also applies). The notifications decided in one flush go into the
outbox in one transaction. Resolved alerts leave the group after the flush.

Time is passed in (``now``); the :class:`~inferwatch.alerting.alertmanager.Alertmanager`
drives :meth:`Dispatcher.flush_due` from its loop or from ``tick``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from inferwatch.alerting.alert import Alert, Notification
from inferwatch.alerting.alertstore import AlertStore, StoredAlert
from inferwatch.alerting.inhibit import Inhibitor
from inferwatch.alerting.nflog import Database, NflogEntry, NotificationLog, needs_update
from inferwatch.alerting.notifiers.base import Notifier
from inferwatch.alerting.outbox import Outbox
from inferwatch.alerting.route import Route

log = logging.getLogger(__name__)


class IntegrationLike(Protocol):
    """What the dispatcher needs of one integration (``config.Integration``)."""

    @property
    def key(self) -> str: ...

    @property
    def notifier(self) -> Notifier: ...


class ReceiverLike(Protocol):
    """What the dispatcher needs of one receiver (``config.Receiver``)."""

    @property
    def name(self) -> str: ...

    @property
    def integrations(self) -> Sequence[IntegrationLike]: ...


class SilencesLike(Protocol):
    """What the dispatcher needs of the silences (``silence.Silences``)."""

    def mutes(self, labels: Mapping[str, str], now: float) -> list[str]: ...


def alert_sort_key(alert: Alert) -> tuple[object, ...]:
    """Alertmanager's ``types.AlertSlice`` order: by ``job``, then ``instance`` (alerts
    lacking the label last), then by the whole label set."""
    parts: list[object] = []
    for name in ("job", "instance"):
        value = alert.labels.get(name)
        parts.append((value is None, value or ""))
    items = sorted(alert.labels.items())
    parts.append((len(items), items))
    return tuple(parts)


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


@dataclass(eq=False)
class AggregationGroup:
    """The alerts of one route with the same group labels, and the group's timer."""

    route: Route
    labels: dict[str, str]
    key: str
    next_flush: float
    alerts: dict[str, StoredAlert] = field(default_factory=dict)
    has_flushed: bool = False

    def sorted_alerts(self) -> list[StoredAlert]:
        return sorted(self.alerts.values(), key=lambda s: alert_sort_key(s.alert))


class Dispatcher:
    """Aggregation groups for one routing tree, flushed into the outbox."""

    def __init__(
        self,
        route: Route,
        receivers: Mapping[str, ReceiverLike],
        *,
        db: Database,
        store: AlertStore,
        silences: SilencesLike,
        inhibitor: Inhibitor,
        nflog: NotificationLog,
        outbox: Outbox,
        external_url: str = "",
    ) -> None:
        self.route = route
        self.receivers = receivers
        self._db = db
        self._store = store
        self._silences = silences
        self._inhibitor = inhibitor
        self._nflog = nflog
        self._outbox = outbox
        self.external_url = external_url
        self._groups: dict[tuple[int, str], AggregationGroup] = {}
        self._lock = threading.RLock()

    def insert(self, item: StoredAlert, now: float) -> None:
        """Put an alert (as stored) into the groups of every route it matches."""
        labels = item.alert.labels
        with self._lock:
            for route in self.route.match(labels):
                key = route.group_key(labels)
                group = self._groups.get((id(route), key))
                if group is None:
                    group = AggregationGroup(
                        route, route.group_labels(labels), key, now + route.group_wait_s
                    )
                    self._groups[(id(route), key)] = group
                group.alerts[item.fingerprint] = item
                if not group.has_flushed and item.alert.starts_at + route.group_wait_s < now:
                    group.next_flush = min(group.next_flush, now)

    def groups(self) -> list[AggregationGroup]:
        """The current aggregation groups, in creation order."""
        with self._lock:
            return list(self._groups.values())

    def next_due(self) -> float | None:
        """When the earliest group flush is due, or None without groups."""
        with self._lock:
            return min((g.next_flush for g in self._groups.values()), default=None)

    def flush_due(self, now: float) -> int:
        """Flush every group whose timer is due; returns the number flushed."""
        with self._lock:
            due = [g for g in self._groups.values() if g.next_flush <= now]
            for group in due:
                group.next_flush = now + group.route.group_interval_s
                group.has_flushed = True
                try:
                    self.flush(group, now)
                except Exception:
                    log.exception("flushing group %s failed", group.key)
                if not group.alerts:
                    del self._groups[(id(group.route), group.key)]
            return len(due)

    def muted(self, alert: Alert, now: float) -> bool:
        """Whether an alert is inhibited or silenced at ``now``."""
        if self._inhibitor.mutes(alert.labels, self._store.firing(now), now):
            return True
        return bool(self._silences.mutes(alert.labels, now))

    def flush(self, group: AggregationGroup, now: float) -> None:
        """Decide and queue the notifications of one group (one transaction)."""
        items = group.sorted_alerts()
        alerts: list[Alert] = []
        for item in items:
            a = item.alert
            # A firing alert is sent without an end, so it cannot resolve on its own
            # while it waits in the outbox.
            alerts.append(a if a.resolved(now) else replace(a, ends_at=None))
        kept = [a for a in alerts if not self.muted(a, now)]
        if kept:
            receiver = self.receivers.get(group.route.receiver)
            if receiver is None:
                log.error("group %s: receiver %r not configured", group.key, group.route.receiver)
                return
            with self._db.transaction():
                for integration in receiver.integrations:
                    self._decide(group, receiver.name, integration, kept, now)
        resolved = [i for i in items if i.alert.resolved(now)]
        for item in resolved:
            current = group.alerts.get(item.fingerprint)
            if current is not None and current.updated_at == item.updated_at:
                del group.alerts[item.fingerprint]

    def _decide(
        self,
        group: AggregationGroup,
        receiver: str,
        integration: IntegrationLike,
        alerts: list[Alert],
        now: float,
    ) -> None:
        firing = frozenset(a.fingerprint for a in alerts if not a.resolved(now))
        resolved = frozenset(a.fingerprint for a in alerts if a.resolved(now))
        send_resolved = integration.notifier.send_resolved
        pending = self._outbox.last_pending(group.key, integration.key)
        if pending is not None:
            entry = NflogEntry(
                group.key, integration.key, pending.firing, pending.resolved, pending.created_at
            )
            due = needs_update(
                entry,
                firing,
                resolved,
                send_resolved=send_resolved,
                repeat_interval_s=float("inf"),
                now=now,
            )
        else:
            due = needs_update(
                self._nflog.get(group.key, integration.key),
                firing,
                resolved,
                send_resolved=send_resolved,
                repeat_interval_s=group.route.repeat_interval_s,
                now=now,
            )
        if not due:
            return
        sent = alerts if send_resolved else [a for a in alerts if not a.resolved(now)]
        notification = self.notification(group, receiver, sent, now) if sent else None
        self._outbox.enqueue(group.key, integration.key, notification, firing, resolved, now)

    def notification(
        self, group: AggregationGroup, receiver: str, alerts: Sequence[Alert], now: float
    ) -> Notification:
        """The notification of a group's alerts for one receiver."""
        return Notification(
            receiver=receiver,
            status="firing" if any(not a.resolved(now) for a in alerts) else "resolved",
            alerts=tuple(alerts),
            group_labels=dict(group.labels),
            common_labels=_common([a.labels for a in alerts]),
            common_annotations=_common([a.annotations for a in alerts]),
            external_url=self.external_url,
            group_key=group.key,
            now=now,
        )


__all__ = [
    "AggregationGroup",
    "Dispatcher",
    "IntegrationLike",
    "ReceiverLike",
    "SilencesLike",
    "alert_sort_key",
]

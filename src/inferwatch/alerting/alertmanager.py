"""The embedded Alertmanager: alert store, silences, inhibition, dispatcher, notification
log and persistent outbox, over one SQLite file.

Rule evaluators hand it alerts through :meth:`Alertmanager.send_alerts` (it is an
:class:`~inferwatch.alerting.alert.AlertSink`); a real Prometheus can post them to
``/api/v2/alerts`` of :meth:`Alertmanager.api_app`. :meth:`start` runs two background
threads, one flushing aggregation groups when their timers are due and one delivering
the outbox; each sleeps on an event until its next deadline, so a due timer is served
at once. Tests call :meth:`tick` with a :class:`~inferwatch.testing.FakeClock` instead.

Usage::

    am = Alertmanager(load_config("alertmanager.yml"), db_path="alerting.db")
    am.start()
    am.send_alerts([Alert(labels={"alertname": "HighLatency"}, starts_at=time.time())])
    ...
    am.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.alertstore import AlertStore, StoredAlert
from inferwatch.alerting.dispatch import Dispatcher
from inferwatch.alerting.inhibit import Inhibitor
from inferwatch.alerting.nflog import Database, NotificationLog
from inferwatch.alerting.notifiers.base import Notifier
from inferwatch.alerting.outbox import Outbox
from inferwatch.alerting.silence import Silences

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from inferwatch.alerting.config import AlertmanagerConfig

log = logging.getLogger(__name__)

GC_INTERVAL_S = 60.0
OUTBOX_RETENTION_S = 120 * 3600.0
# Without a due timer the loops still wake now and then (cheap), so a clock jump is
# noticed.
MAX_SLEEP_S = 5.0


class Alertmanager:
    """Routes, groups, deduplicates and delivers alerts as Alertmanager 0.25 does.

    ``db_path=None`` keeps everything in memory. ``retry_jitter``, ``initial_backoff_s``
    and ``max_backoff_s`` tune the outbox's retries (1 s doubling to 5 min, jittered).
    """

    def __init__(
        self,
        config: AlertmanagerConfig,
        *,
        db_path: str | None,
        clock: Callable[[], float] = time.time,
        external_url: str = "",
        retry_jitter: bool = True,
        initial_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
    ) -> None:
        self._clock = clock
        self.external_url = external_url
        self.started_at = clock()
        self._db = Database(db_path)
        self.nflog = NotificationLog(self._db, clock=clock)
        self.outbox = Outbox(
            self._db,
            self.nflog,
            clock=clock,
            initial_backoff_s=initial_backoff_s,
            max_backoff_s=max_backoff_s,
            jitter=retry_jitter,
        )
        self.outbox.retry_now(self.started_at)
        self.store = AlertStore(
            self._db, clock=clock, resolve_timeout_s=config.global_.resolve_timeout_s
        )
        self.silences = Silences(db_path, clock=clock)
        self._flush_wake = threading.Event()
        self._deliver_wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last_gc = 0.0
        self._apply(config)

    def _apply(self, config: AlertmanagerConfig) -> None:
        self.config = config
        self.store.resolve_timeout_s = config.global_.resolve_timeout_s
        self.inhibitor = Inhibitor(config.inhibit_rules)
        self.notifiers: dict[str, Notifier] = {
            integration.key: integration.notifier
            for receiver in config.receivers.values()
            for integration in receiver.integrations
        }
        dispatcher = Dispatcher(
            config.route,
            config.receivers,
            db=self._db,
            store=self.store,
            silences=self.silences,
            inhibitor=self.inhibitor,
            nflog=self.nflog,
            outbox=self.outbox,
            external_url=self.external_url,
        )
        now = self._clock()
        for item in self.store.alerts():
            dispatcher.insert(item, now)
        self.dispatcher = dispatcher

    def send_alerts(self, alerts: Sequence[Alert]) -> None:
        """Receive alerts (the :class:`AlertSink` interface); never raises."""
        try:
            self.receive(alerts)
        except Exception:
            log.exception("receiving %d alerts failed", len(alerts))

    def receive(self, alerts: Sequence[Alert], now: float | None = None) -> list[StoredAlert]:
        """Store and dispatch alerts; returns them as stored (merged, times filled)."""
        now = self._clock() if now is None else now
        stored = self.store.put(alerts, now)
        dispatcher = self.dispatcher
        for item in stored:
            dispatcher.insert(item, now)
        self._flush_wake.set()
        return stored

    def reload(self, config: AlertmanagerConfig) -> None:
        """Use a new configuration: the routing tree is rebuilt and groups start again
        from the stored alerts (the notification log keeps them from resending)."""
        self._apply(config)
        self._flush_wake.set()
        self._deliver_wake.set()

    def tick(self, now: float | None = None) -> None:
        """Run, synchronously, the group flushes and deliveries due at ``now``."""
        now = self._clock() if now is None else now
        self.dispatcher.flush_due(now)
        self.outbox.deliver_due(self.notifiers, now)

    def gc(self, now: float | None = None) -> None:
        """Drop old resolved alerts, notification-log entries, silences and outbox rows."""
        now = self._clock() if now is None else now
        self.store.gc(now)
        self.nflog.gc(now)
        self.silences.gc()
        self.outbox.gc(now - OUTBOX_RETENTION_S)

    # background threads

    def start(self) -> None:
        """Start the flush and delivery threads."""
        if self._threads:
            return
        self._stopping.clear()
        for name, target in (
            ("inferwatch-dispatch", self._flush_loop),
            ("inferwatch-outbox", self._deliver_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop the threads (an in-flight send finishes first) and close the database."""
        self._stopping.set()
        self._flush_wake.set()
        self._deliver_wake.set()
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        self.silences.close()
        self._db.close()

    def __enter__(self) -> Alertmanager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _sleep_for(due: float | None, now: float) -> float:
        if due is None:
            return MAX_SLEEP_S
        return max(0.0, min(MAX_SLEEP_S, due - now))

    def _flush_loop(self) -> None:
        while not self._stopping.is_set():
            self._flush_wake.clear()
            now = self._clock()
            try:
                if self.dispatcher.flush_due(now):
                    self._deliver_wake.set()
                if now - self._last_gc >= GC_INTERVAL_S:
                    self._last_gc = now
                    self.gc(now)
            except Exception:
                log.exception("dispatch loop iteration failed")
            self._flush_wake.wait(self._sleep_for(self.dispatcher.next_due(), self._clock()))

    def _deliver_loop(self) -> None:
        while not self._stopping.is_set():
            self._deliver_wake.clear()
            try:
                self.outbox.deliver_due(self.notifiers)
                due = self.outbox.next_due()
            except Exception:
                log.exception("outbox delivery failed")
                due = None
            self._deliver_wake.wait(self._sleep_for(due, self._clock()))

    # views for the API and metrics

    def alert_receivers(self, alert: Alert) -> list[str]:
        """The receivers of the routes an alert matches, without repeats."""
        names: list[str] = []
        for route in self.config.route.match(alert.labels):
            if route.receiver not in names:
                names.append(route.receiver)
        return names

    def alert_status(self, alert: Alert, now: float) -> tuple[str, list[str], list[str]]:
        """``(state, silenced_by, inhibited_by)`` as the API shows them; the state is
        ``suppressed`` when silenced or inhibited, else ``active``."""
        silenced = self.silences.mutes(alert.labels, now)
        source = self.inhibitor.inhibited_by(alert.labels, self.store.firing(now), now)
        inhibited = [source] if source is not None else []
        state = "suppressed" if silenced or inhibited else "active"
        return state, silenced, inhibited

    def collector(self) -> AlertingCollector:
        """A prometheus_client collector of the alerting metrics: register it with
        ``registry.register(am.collector())``."""
        return AlertingCollector(self)

    def api_app(self) -> Any:
        """The ASGI app serving Alertmanager's ``/api/v2`` and ``/-/healthy``/``/-/ready``."""
        from inferwatch.alerting.api import create_app

        return create_app(self)


class AlertingCollector:
    """``inferwatch_notifications_total{integration}``,
    ``inferwatch_notifications_failed_total{integration,reason}``,
    ``inferwatch_outbox_pending`` and ``inferwatch_alerts{state}``; ``integration`` is
    the integration kind (``webhook``), as Alertmanager labels its own counters."""

    def __init__(self, am: Alertmanager) -> None:
        self._am = am

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        am = self._am
        sent = CounterMetricFamily(
            "inferwatch_notifications",
            "Notifications delivered, by integration kind.",
            labels=["integration"],
        )
        for kind in sorted({*am.outbox.sent_total, *(i.split("/")[1] for i in am.notifiers)}):
            sent.add_metric([kind], am.outbox.sent_total[kind])
        yield sent
        failed = CounterMetricFamily(
            "inferwatch_notifications_failed",
            "Failed notification attempts, by integration kind and reason.",
            labels=["integration", "reason"],
        )
        for (kind, reason), value in sorted(am.outbox.failed_total.items()):
            failed.add_metric([kind, reason], value)
        yield failed
        yield GaugeMetricFamily(
            "inferwatch_outbox_pending",
            "Notifications waiting in the outbox.",
            value=am.outbox.pending_count(),
        )
        now = am._clock()
        counts = {"active": 0, "suppressed": 0}
        for alert in am.store.firing(now):
            counts[am.alert_status(alert, now)[0]] += 1
        alerts = GaugeMetricFamily("inferwatch_alerts", "Firing alerts by state.", labels=["state"])
        for state, value in counts.items():
            alerts.add_metric([state], value)
        yield alerts


__all__ = ["AlertingCollector", "Alertmanager"]

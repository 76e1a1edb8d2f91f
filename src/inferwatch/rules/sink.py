"""Sending alerts to a real Alertmanager's ``/api/v2/alerts``, as Prometheus's notifier.

::

    client = AlertmanagerClient("http://alertmanager:9093")
    RuleManager(store, sink=client)

:meth:`AlertmanagerClient.send_alerts` never blocks and never raises: alerts go to a
bounded queue that a background thread posts in batches. When the queue is full the
oldest alerts are dropped (counted in ``dropped``), as Prometheus does; a failed post is
logged and counted in ``errors`` (the next resend of a firing alert makes up for it).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Sequence

import httpx

from inferwatch.alerting.alert import Alert
from inferwatch.gotemplate.gotime import go_rfc3339

log = logging.getLogger("inferwatch.rules.sink")


def rfc3339(ts: float) -> str:
    """Unix seconds as Go's RFC 3339 with nanoseconds, trailing zeros trimmed."""
    return go_rfc3339(ts)


def alert_json(alert: Alert) -> dict[str, object]:
    """One alert as the Alertmanager v2 API's ``postableAlert``."""
    out: dict[str, object] = {
        "labels": dict(sorted(alert.labels.items())),
        "annotations": dict(sorted(alert.annotations.items())),
        "startsAt": rfc3339(alert.starts_at),
    }
    if alert.ends_at is not None:
        out["endsAt"] = rfc3339(alert.ends_at)
    if alert.generator_url:
        out["generatorURL"] = alert.generator_url
    return out


class AlertmanagerClient:
    """An :class:`~inferwatch.alerting.alert.AlertSink` posting to ``{url}/api/v2/alerts``.

    ``timeout`` bounds each post (seconds). ``client`` is the ``httpx.Client`` to use
    (for TLS or auth settings); by default one is made and closed by :meth:`close`.
    At most ``queue_capacity`` alerts wait; each post carries at most ``max_batch``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        queue_capacity: int = 10_000,
        max_batch: int = 64,
    ) -> None:
        if queue_capacity < 1 or max_batch < 1:
            raise ValueError("queue_capacity and max_batch must be at least 1")
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.timeout = timeout
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client(trust_env=False)
        self.queue_capacity = queue_capacity
        self.max_batch = max_batch
        #: Alerts posted, dropped because the queue was full, and lost in failed posts.
        self.sent = 0
        self.dropped = 0
        self.errors = 0
        self._queue: collections.deque[Alert] = collections.deque()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def send_alerts(self, alerts: Sequence[Alert]) -> None:
        """Queue ``alerts`` for posting; returns at once."""
        if not alerts:
            return
        with self._cond:
            if self._closed:
                self.dropped += len(alerts)
                return
            self._queue.extend(alerts)
            excess = len(self._queue) - self.queue_capacity
            for _ in range(max(excess, 0)):
                self._queue.popleft()
            if excess > 0:
                self.dropped += excess
                log.warning("Alert notification queue full, dropped %d alerts", excess)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="inferwatch-alertmanager-client", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch = [
                    self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))
                ]
                self._in_flight = len(batch)
            ok = self._post(batch)
            with self._cond:
                self._in_flight = 0
                if ok:
                    self.sent += len(batch)
                else:
                    self.errors += len(batch)
                self._cond.notify_all()

    def _post(self, batch: list[Alert]) -> bool:
        body = json.dumps([alert_json(a) for a in batch])
        try:
            response = self._client.post(
                self.url,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            log.error("Error sending %d alerts to %s: %s", len(batch), self.url, exc)
            return False
        if response.status_code // 100 != 2:
            log.error(
                "Error sending %d alerts to %s: bad response status %d: %s",
                len(batch),
                self.url,
                response.status_code,
                response.text[:200],
            )
            return False
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued alert was posted (or failed); False on timeout."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue and not self._in_flight, timeout=timeout
            )

    def close(self, timeout: float | None = 10.0) -> None:
        """Post what is queued (within ``timeout``), then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if self._own_client:
            self._client.close()


__all__ = ["AlertmanagerClient", "alert_json", "rfc3339"]

"""The assembled Alertmanager: restarts over one db, long outages, threads, metrics."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.alertmanager import Alertmanager
from inferwatch.alerting.config import (
    AlertmanagerConfig,
    GlobalConfig,
    Integration,
    Receiver,
    parse_config,
)
from inferwatch.alerting.route import Route
from inferwatch.testing import FakeClock
from inferwatch.testing.notify import CapturingNotifier, WebhookReceiver

ROUTE = Route(receiver="team", group_by=("alertname",), group_wait_s=30, group_interval_s=300)


def capturing_config(notifier: CapturingNotifier) -> AlertmanagerConfig:
    receiver = Receiver("team", (Integration(notifier.kind, 0, notifier, receiver="team"),))
    return AlertmanagerConfig(global_=GlobalConfig(), route=ROUTE, receivers={"team": receiver})


def webhook_config(url: str, group_wait: str = "30s") -> AlertmanagerConfig:
    return parse_config(
        f"""
route:
  receiver: team
  group_by: [alertname]
  group_wait: {group_wait}
  group_interval: 5m
receivers:
  - name: team
    webhook_configs:
      - url: {url}/hook
"""
    )


def alert(clock: FakeClock, instance: str, *, lasting: float = 7200) -> Alert:
    return Alert(
        {"alertname": "Down", "instance": instance},
        starts_at=clock(),
        ends_at=clock() + lasting,
    )


def run_for(am: Alertmanager, clock: FakeClock, seconds: float, step: float = 10) -> None:
    for _ in range(int(seconds // step)):
        clock.advance(step)
        am.tick()


def test_pending_outbox_entries_are_delivered_once_after_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "alerting.db")
    clock = FakeClock()
    down = CapturingNotifier()
    down.failing = True
    am = Alertmanager(capturing_config(down), db_path=db, clock=clock, retry_jitter=False)
    am.send_alerts([alert(clock, "a")])
    run_for(am, clock, 30)
    assert am.outbox.pending_count() == 1
    am.stop()

    up = CapturingNotifier()
    am = Alertmanager(capturing_config(up), db_path=db, clock=clock, retry_jitter=False)
    am.tick()
    assert len(up.notifications) == 1
    run_for(am, clock, 600)  # groups rebuilt from the store flush again: no duplicate
    am.stop()
    am = Alertmanager(capturing_config(up), db_path=db, clock=clock, retry_jitter=False)
    run_for(am, clock, 600)
    am.stop()
    assert len(up.notifications) == 1
    assert up.notifications[0].group_key == '{}:{alertname="Down"}'


def test_long_outage_with_restart_delivers_every_change_once_in_order(tmp_path: Path) -> None:
    db = str(tmp_path / "alerting.db")
    clock = FakeClock()
    with WebhookReceiver() as receiver:
        receiver.status = 503
        config = webhook_config(receiver.url)
        am = Alertmanager(config, db_path=db, clock=clock, retry_jitter=False)
        a = alert(clock, "a")
        am.send_alerts([a])
        run_for(am, clock, 60)  # 1st: a firing
        am.send_alerts([alert(clock, "b")])
        run_for(am, clock, 300)  # 2nd: a, b firing
        am.stop()

        am = Alertmanager(config, db_path=db, clock=clock, retry_jitter=False)
        run_for(am, clock, 600)  # rebuilt groups: nothing new to say
        am.send_alerts([Alert(a.labels, starts_at=a.starts_at, ends_at=clock())])
        run_for(am, clock, 300)  # 3rd: b firing, a resolved
        assert receiver.bodies == []
        assert am.outbox.pending_count() == 3

        receiver.status = 200
        run_for(am, clock, 600)
        am.stop()
        am = Alertmanager(config, db_path=db, clock=clock, retry_jitter=False)
        run_for(am, clock, 900)
        am.stop()

    bodies = receiver.bodies
    assert [
        [(x["labels"]["instance"], x["status"]) for x in body["alerts"]] for body in bodies
    ] == [
        [("a", "firing")],
        [("a", "firing"), ("b", "firing")],
        [("a", "resolved"), ("b", "firing")],
    ]
    assert {body["groupKey"] for body in bodies} == {'{}:{alertname="Down"}'}


def test_retryable_failures_back_off_exponentially_up_to_the_cap() -> None:
    clock = FakeClock()
    n = CapturingNotifier()
    n.failing = True
    with Alertmanager(capturing_config(n), db_path=None, clock=clock, retry_jitter=False) as am:
        am.send_alerts([alert(clock, "a")])
        start = clock.advance(30)
        am.tick()
        attempt_times = [start]
        for _ in range(3000):
            before = n.attempts
            clock.advance(1)
            am.tick()
            if n.attempts > before:
                attempt_times.append(clock())
            if len(attempt_times) == 12:
                break
        gaps = [b - a for a, b in itertools.pairwise(attempt_times)]
        assert gaps == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        n.failing = False
        run_for(am, clock, 300)
        assert len(n.notifications) == 1


def test_background_threads_deliver_to_a_real_webhook() -> None:
    with WebhookReceiver() as receiver:
        am = Alertmanager(webhook_config(receiver.url, "0s"), db_path=None)
        am.start()
        try:
            am.send_alerts([Alert({"alertname": "Down"}, starts_at=time.time())])
            (body,) = receiver.wait_for(1)
        finally:
            am.stop()
    assert body["status"] == "firing"
    assert body["receiver"] == "team"
    assert body["alerts"][0]["labels"] == {"alertname": "Down"}


def test_metrics_count_deliveries_failures_and_pending() -> None:
    clock = FakeClock()
    n = CapturingNotifier()
    with Alertmanager(capturing_config(n), db_path=None, clock=clock, retry_jitter=False) as am:
        registry = CollectorRegistry()
        registry.register(am.collector())
        n.fail_times(1)
        am.send_alerts([alert(clock, "a"), Alert({"alertname": "Other"}, starts_at=clock())])
        clock.advance(30)
        am.tick()
        text = generate_latest(registry).decode()
        assert (
            'inferwatch_notifications_failed_total{integration="webhook",reason="retryable"} 1.0'
            in text
        )
        assert "inferwatch_outbox_pending 1.0" in text  # the other group went out
        assert 'inferwatch_alerts{state="active"} 2.0' in text
        run_for(am, clock, 10)
        text = generate_latest(registry).decode()
        assert 'inferwatch_notifications_total{integration="webhook"} 2.0' in text
        assert "inferwatch_outbox_pending 0.0" in text

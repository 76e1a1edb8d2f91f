"""Grouping, timers, inhibition, silences and dedup, driven by a FakeClock and tick()."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.alertmanager import Alertmanager
from inferwatch.alerting.config import AlertmanagerConfig, GlobalConfig, Integration, Receiver
from inferwatch.alerting.dispatch import alert_sort_key
from inferwatch.alerting.inhibit import InhibitRule
from inferwatch.alerting.matchers import Matcher
from inferwatch.alerting.route import Route
from inferwatch.alerting.silence import Silence
from inferwatch.testing import FakeClock
from inferwatch.testing.notify import CapturingNotifier


def make_config(
    route: Route,
    notifiers: dict[str, CapturingNotifier],
    inhibit_rules: tuple[InhibitRule, ...] = (),
) -> AlertmanagerConfig:
    receivers = {
        name: Receiver(name, (Integration(n.kind, 0, n, receiver=name),))
        for name, n in notifiers.items()
    }
    return AlertmanagerConfig(
        global_=GlobalConfig(), route=route, receivers=receivers, inhibit_rules=inhibit_rules
    )


ROUTE = Route(
    receiver="team",
    group_by=("alertname",),
    group_wait_s=30,
    group_interval_s=300,
    repeat_interval_s=3600,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def notifier() -> CapturingNotifier:
    return CapturingNotifier()


@pytest.fixture
def am(clock: FakeClock, notifier: CapturingNotifier) -> Iterator[Alertmanager]:
    manager = Alertmanager(
        make_config(ROUTE, {"team": notifier}), db_path=None, clock=clock, retry_jitter=False
    )
    yield manager
    manager.stop()


def firing(name: str, clock: FakeClock, **labels: str) -> Alert:
    return Alert(labels={"alertname": name, **labels}, starts_at=clock(), ends_at=clock() + 180)


def step(am: Alertmanager, clock: FakeClock, seconds: float) -> None:
    clock.advance(seconds)
    am.tick()


def names(n: CapturingNotifier, i: int) -> list[str]:
    return [a.labels["instance"] for a in n.notifications[i].alerts]


def test_first_notification_waits_for_group_wait(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    am.send_alerts([firing("Down", clock, instance="a")])
    step(am, clock, 29)
    assert notifier.notifications == []
    step(am, clock, 1)
    assert len(notifier.notifications) == 1
    n = notifier.notifications[0]
    assert n.group_key == '{}:{alertname="Down"}'
    assert n.receiver == "team"
    assert n.status == "firing"
    assert n.group_labels == {"alertname": "Down"}
    assert n.alerts[0].ends_at is None


def test_alerts_arriving_within_group_interval_are_batched(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    am.send_alerts([firing("Down", clock, instance="a")])
    step(am, clock, 30)
    clock.advance(10)
    am.send_alerts([firing("Down", clock, instance="b")])
    am.send_alerts([firing("Down", clock, instance="c")])
    am.tick()
    step(am, clock, 100)
    assert len(notifier.notifications) == 1
    step(am, clock, 190)  # 300 s after the first flush
    assert len(notifier.notifications) == 2
    assert names(notifier, 1) == ["a", "b", "c"]


def test_other_group_labels_make_separate_groups(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    am.send_alerts([firing("Down", clock, instance="a"), firing("Slow", clock, instance="a")])
    step(am, clock, 30)
    keys = sorted(n.group_key for n in notifier.notifications)
    assert keys == ['{}:{alertname="Down"}', '{}:{alertname="Slow"}']


def test_no_resend_without_change_until_repeat_interval(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    alert = firing("Down", clock, instance="a")

    def resend() -> None:  # as Prometheus does while the alert fires
        am.send_alerts([Alert(alert.labels, starts_at=alert.starts_at, ends_at=clock() + 180)])

    am.send_alerts([alert])
    step(am, clock, 30)
    for _ in range(55):  # 3300 s: 11 group intervals, short of repeat_interval 3600 s
        resend()
        step(am, clock, 60)
    assert len(notifier.notifications) == 1
    # the flush at 3630 s is exactly repeat_interval after the first: not yet (strict)
    for _ in range(10):
        resend()
        step(am, clock, 60)
    assert len(notifier.notifications) == 2
    assert names(notifier, 1) == ["a"]


def test_resolved_alert_is_sent_when_send_resolved(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    alert = firing("Down", clock, instance="a")
    am.send_alerts([alert])
    step(am, clock, 30)
    clock.advance(60)
    am.send_alerts([Alert(alert.labels, starts_at=alert.starts_at, ends_at=clock())])
    step(am, clock, 240)
    assert [n.status for n in notifier.notifications] == ["firing", "resolved"]
    assert notifier.notifications[1].alerts[0].ends_at == pytest.approx(alert.starts_at + 90)
    assert am.dispatcher.groups() == []


def test_resolved_alert_is_not_sent_without_send_resolved(clock: FakeClock) -> None:
    quiet = CapturingNotifier(send_resolved=False)
    with Alertmanager(
        make_config(ROUTE, {"team": quiet}), db_path=None, clock=clock, retry_jitter=False
    ) as am:
        a, b = firing("Down", clock, instance="a"), firing("Down", clock, instance="b")
        am.send_alerts([a, b])
        step(am, clock, 30)
        am.send_alerts([Alert(a.labels, starts_at=a.starts_at, ends_at=clock())])
        step(am, clock, 300)
        assert len(quiet.notifications) == 1  # one resolved of two: nothing to say
        am.send_alerts([Alert(b.labels, starts_at=b.starts_at, ends_at=clock())])
        step(am, clock, 300)
        assert len(quiet.notifications) == 1
        # the log now knows nothing fires, so a new firing alert is sent at once
        entry = am.nflog.get('{}:{alertname="Down"}', "team/webhook/0")
        assert entry is not None and entry.firing == frozenset()
        am.send_alerts([firing("Down", clock, instance="a")])
        step(am, clock, 30)
        assert len(quiet.notifications) == 2


def test_old_alert_in_new_group_skips_group_wait(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    am.send_alerts([Alert({"alertname": "Down"}, starts_at=clock() - 600, ends_at=clock() + 60)])
    am.tick()
    assert len(notifier.notifications) == 1


def test_inhibited_alert_is_not_sent(clock: FakeClock) -> None:
    n = CapturingNotifier()
    rule = InhibitRule(
        source_matchers=(Matcher("severity", "=", "critical"),),
        target_matchers=(Matcher("severity", "=", "warning"),),
        equal=("cluster",),
    )
    route = Route(receiver="team", group_by=("cluster",), group_wait_s=30)
    with Alertmanager(make_config(route, {"team": n}, (rule,)), db_path=None, clock=clock) as am:
        am.send_alerts(
            [
                firing("DiskFull", clock, severity="warning", cluster="c1", instance="a"),
                firing("ClusterDown", clock, severity="critical", cluster="c1", instance="b"),
                firing("DiskFull", clock, severity="warning", cluster="c2", instance="c"),
            ]
        )
        step(am, clock, 30)
        by_key = {x.group_key: x for x in n.notifications}
        assert [a.labels["alertname"] for a in by_key['{}:{cluster="c1"}'].alerts] == [
            "ClusterDown"
        ]
        assert len(by_key['{}:{cluster="c2"}'].alerts) == 1


def test_silenced_alert_is_not_sent_until_silence_ends(
    am: Alertmanager, clock: FakeClock, notifier: CapturingNotifier
) -> None:
    am.silences.set(
        Silence(
            matchers=(Matcher("instance", "=", "a"),),
            starts_at=clock(),
            ends_at=clock() + 100,
            created_by="me",
            comment="maintenance",
        )
    )
    a = Alert({"alertname": "Down", "instance": "a"}, starts_at=clock(), ends_at=clock() + 3600)
    am.send_alerts([a])
    step(am, clock, 30)
    assert notifier.notifications == []
    step(am, clock, 300)
    assert len(notifier.notifications) == 1


def test_continue_routes_send_to_each_receiver(clock: FakeClock) -> None:
    ops, dev = CapturingNotifier(), CapturingNotifier()
    route = Route(
        receiver="ops",
        group_by=("alertname",),
        routes=(
            Route(receiver="ops", matchers=(Matcher("team", "=", "x"),), continue_=True),
            Route(receiver="dev", matchers=(Matcher("team", "=", "x"),), group_wait_s=5),
        ),
    )
    with Alertmanager(
        make_config(route, {"ops": ops, "dev": dev}), db_path=None, clock=clock
    ) as am:
        am.send_alerts([firing("Down", clock, team="x")])
        step(am, clock, 5)
        assert len(dev.notifications) == 1 and ops.notifications == []
        step(am, clock, 25)
        assert len(ops.notifications) == 1
        assert dev.notifications[0].group_key == '{}/{team="x"}:{}'


def test_alert_order_follows_alertmanager() -> None:
    alerts = [
        Alert({"alertname": "x"}),
        Alert({"alertname": "x", "job": "b"}),
        Alert({"alertname": "x", "job": "a", "instance": "2"}),
        Alert({"alertname": "x", "job": "a", "instance": "1"}),
    ]
    ordered = sorted(alerts, key=alert_sort_key)
    assert [dict(a.labels) for a in ordered] == [
        {"alertname": "x", "job": "a", "instance": "1"},
        {"alertname": "x", "job": "a", "instance": "2"},
        {"alertname": "x", "job": "b"},
        {"alertname": "x"},
    ]

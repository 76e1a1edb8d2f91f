"""The alert state machine: `for`, keep_firing_for, flapping, limits, ALERTS series."""

from __future__ import annotations

import math

import pytest

from inferwatch._errors import QueryError
from inferwatch.promql import Sample
from inferwatch.rules.alerting import AlertStateMachine
from inferwatch.rules.model import AlertingRule
from inferwatch.testing import FakeClock
from inferwatch.tsdb.labels import Labels, make_labels

UP = make_labels({"__name__": "up", "job": "api", "instance": "a"})


def rule(**kwargs: object) -> AlertingRule:
    defaults: dict[str, object] = {"alert": "Down", "expr": "up == 0", "labels": {"sev": "page"}}
    defaults.update(kwargs)
    return AlertingRule(**defaults)  # type: ignore[arg-type]


def vec(*label_sets: Labels, value: float = 0.0) -> list[Sample]:
    return [Sample(lb, 0, value) for lb in label_sets]


def states(machine: AlertStateMachine) -> list[str]:
    return [a.state for a in machine.alerts()]


def test_alert_is_pending_until_for_has_passed_then_fires() -> None:
    clock = FakeClock()
    m = AlertStateMachine(rule(for_s=120))
    m.eval(vec(UP), clock())
    assert states(m) == ["pending"]
    clock.advance(60)
    m.eval(vec(UP), clock())
    assert states(m) == ["pending"]
    clock.advance(60)
    m.eval(vec(UP), clock())
    assert states(m) == ["firing"]
    alert = m.alerts()[0]
    assert alert.fired_at == clock()
    assert alert.active_at == clock() - 120
    assert dict(alert.labels) == {"alertname": "Down", "instance": "a", "job": "api", "sev": "page"}


def test_alert_without_for_fires_at_once() -> None:
    m = AlertStateMachine(rule())
    m.eval(vec(UP), 1000.0)
    assert states(m) == ["firing"]


def test_pending_alert_that_clears_restarts_its_for() -> None:
    clock = FakeClock()
    m = AlertStateMachine(rule(for_s=120))
    m.eval(vec(UP), clock())
    clock.advance(60)
    m.eval([], clock())
    assert m.alerts() == []
    assert m.active == {}
    clock.advance(60)
    m.eval(vec(UP), clock())
    assert m.alerts()[0].active_at == clock()
    clock.advance(60)
    m.eval(vec(UP), clock())
    assert states(m) == ["pending"]


def test_firing_alert_that_clears_is_resolved_and_a_return_is_a_new_alert() -> None:
    clock = FakeClock()
    m = AlertStateMachine(rule(for_s=60))
    m.eval(vec(UP), clock())
    clock.advance(60)
    m.eval(vec(UP), clock())
    first = m.alerts()[0]
    assert first.state == "firing"
    clock.advance(60)
    m.eval([], clock())
    assert m.alerts() == []
    assert m.state() == "inactive"
    assert first.state == "inactive" and first.resolved_at == clock()
    clock.advance(60)
    m.eval(vec(UP), clock())
    second = m.alerts()[0]
    assert second is not first
    assert second.state == "pending" and second.active_at == clock()


def test_resolved_alert_is_kept_fifteen_minutes_then_dropped() -> None:
    clock = FakeClock()
    m = AlertStateMachine(rule())
    m.eval(vec(UP), clock())
    clock.advance(60)
    m.eval([], clock())
    assert len(m.active) == 1
    clock.advance(15 * 60)
    m.eval([], clock())
    assert len(m.active) == 1
    clock.advance(60)
    m.eval([], clock())
    assert m.active == {}


def test_keep_firing_for_keeps_firing_and_a_return_continues_the_same_alert() -> None:
    clock = FakeClock()
    m = AlertStateMachine(rule(keep_firing_for_s=300))
    m.eval(vec(UP), clock())
    alert = m.alerts()[0]
    fired_at = alert.fired_at
    clock.advance(60)
    m.eval([], clock())
    assert states(m) == ["firing"]
    assert alert.keep_firing_since == clock()
    clock.advance(120)
    m.eval(vec(UP), clock())
    assert m.alerts()[0] is alert and alert.fired_at == fired_at
    assert alert.keep_firing_since is None
    clock.advance(60)
    m.eval([], clock())
    clock.advance(299)
    m.eval([], clock())
    assert states(m) == ["firing"]
    clock.advance(1)
    m.eval([], clock())
    assert m.alerts() == [] and alert.resolved_at == clock()


def test_keep_firing_for_does_not_apply_to_pending_alerts() -> None:
    m = AlertStateMachine(rule(for_s=60, keep_firing_for_s=300))
    m.eval(vec(UP), 0.0)
    m.eval([], 30.0)
    assert m.active == {}


def test_alerts_series_are_written_for_pending_and_firing_alerts() -> None:
    m = AlertStateMachine(rule(for_s=60))
    out = dict(m.eval(vec(UP), 1000.5))
    base = {"alertname": "Down", "instance": "a", "job": "api", "sev": "page"}
    assert out == {
        make_labels({**base, "__name__": "ALERTS", "alertstate": "pending"}): 1.0,
        make_labels({**base, "__name__": "ALERTS_FOR_STATE"}): 1000.0,
    }
    out = dict(m.eval(vec(UP), 1060.5))
    assert make_labels({**base, "__name__": "ALERTS", "alertstate": "firing"}) in out
    assert m.eval([], 1120.5) == []


def test_no_alerts_series_before_the_for_state_is_restored() -> None:
    m = AlertStateMachine(rule(), restored=False)
    assert m.eval(vec(UP), 1000.0) == []
    assert states(m) == ["firing"]


def test_the_value_and_annotations_follow_the_latest_result() -> None:
    m = AlertStateMachine(rule(expr="up"))
    m.eval(vec(UP, value=1.0), 0.0)
    m.eval(vec(UP, value=7.0), 60.0)
    assert m.alerts()[0].value == 7.0


def test_duplicate_label_sets_after_applying_labels_are_an_error() -> None:
    m = AlertStateMachine(rule(labels={"instance": "same"}))
    other = make_labels({"__name__": "up", "job": "api", "instance": "b"})
    with pytest.raises(QueryError, match="same labelset after applying alert labels"):
        m.eval(vec(UP, other), 0.0)


def test_series_differing_only_in_metric_name_are_duplicates() -> None:
    m = AlertStateMachine(rule())
    a = make_labels({"__name__": "x", "job": "api"})
    b = make_labels({"__name__": "y", "job": "api"})
    with pytest.raises(QueryError, match="same labelset"):
        m.eval(vec(a, b), 0.0)


def test_too_many_alerts_drop_every_alert_of_the_rule() -> None:
    m = AlertStateMachine(rule())
    series = [make_labels({"__name__": "up", "instance": str(i)}) for i in range(3)]
    m.eval(vec(*series[:2]), 0.0)
    assert len(m.alerts()) == 2
    with pytest.raises(QueryError, match="exceeded limit of 2 with 3 alerts"):
        m.eval(vec(*series), 60.0, limit=2)
    assert m.active == {}


def test_needs_sending_follows_resend_delay_and_resolution() -> None:
    m = AlertStateMachine(rule())
    m.eval(vec(UP), 0.0)
    alert = m.alerts()[0]
    assert alert.needs_sending(0.0, 60)
    alert.last_sent_at = 0.0
    assert not alert.needs_sending(60.0, 60)
    assert alert.needs_sending(61.0, 60)
    m.eval([], 30.0)
    assert alert.needs_sending(30.0, 60)


def test_restore_moves_active_at_of_a_long_pending_alert_by_the_downtime() -> None:
    m = AlertStateMachine(rule(for_s=3600), restored=False)
    m.eval(vec(UP), 10_000.0)
    # Pending since 5000, last written at 6000 (spent 1000 s of 3600), back at 10000.
    m.restore(10_000.0, lambda labels: (6000.0, 5000.0), grace_period_s=600)
    assert m.alerts()[0].active_at == 5000.0 + 4000.0
    assert m.restored


def test_restore_gives_an_almost_due_alert_the_grace_period() -> None:
    m = AlertStateMachine(rule(for_s=3600), restored=False)
    m.eval(vec(UP), 10_000.0)
    m.restore(10_000.0, lambda labels: (8500.0, 5000.0), grace_period_s=600)
    assert m.alerts()[0].active_at == 10_000.0 + 600 - 3600


def test_restore_keeps_a_firing_alerts_active_at() -> None:
    m = AlertStateMachine(rule(for_s=3600), restored=False)
    m.eval(vec(UP), 10_000.0)
    m.restore(10_000.0, lambda labels: (9000.0, 1000.0), grace_period_s=600)
    assert m.alerts()[0].active_at == 1000.0
    m.eval(vec(UP), 10_060.0)
    assert states(m) == ["firing"]


def test_restore_skips_short_for_and_stale_state() -> None:
    short = AlertStateMachine(rule(for_s=60), restored=False)
    short.eval(vec(UP), 10_000.0)
    short.restore(10_000.0, lambda labels: (9000.0, 1000.0), grace_period_s=600)
    assert short.alerts()[0].active_at == 10_000.0
    stale = AlertStateMachine(rule(for_s=3600), restored=False)
    stale.eval(vec(UP), 10_000.0)
    stale.restore(10_000.0, lambda labels: (9000.0, math.nan), grace_period_s=600)
    assert stale.alerts()[0].active_at == 10_000.0


def test_every_state_change_is_one_structured_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    m = AlertStateMachine(rule(for_s=60))
    with caplog.at_level("INFO", logger="inferwatch.alerts"):
        m.eval(vec(UP, value=3.0), clock())
        clock.advance(30)
        m.eval(vec(UP, value=3.0), clock())  # still pending: no record
        clock.advance(30)
        m.eval(vec(UP, value=4.0), clock())
        clock.advance(30)
        m.eval([], clock())
    changes = [
        (r.levelname, r.__dict__["previous_state"], r.__dict__["state"], r.__dict__["value"])
        for r in caplog.records
        if r.name == "inferwatch.alerts"
    ]
    assert changes == [
        ("INFO", "inactive", "pending", 3.0),
        ("WARNING", "pending", "firing", 4.0),
        ("INFO", "firing", "inactive", 4.0),
    ]
    first = next(r for r in caplog.records if r.name == "inferwatch.alerts")
    assert first.__dict__["alertname"] == "Down"
    assert first.__dict__["labels"]["instance"] == "a"

"""Inhibition as in Alertmanager's documented example and inhibit_test.go semantics."""

from __future__ import annotations

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.inhibit import Inhibitor, InhibitRule
from inferwatch.alerting.matchers import parse_matchers

NOW = 1_700_000_000.0

# The docs' rule: a critical alert mutes warnings with the same alertname and cluster.
RULE = InhibitRule(
    source_matchers=tuple(parse_matchers('severity="critical"')),
    target_matchers=tuple(parse_matchers('severity="warning"')),
    equal=("alertname", "cluster"),
)


def critical(**labels: str) -> Alert:
    return Alert(labels={"severity": "critical", **labels}, starts_at=NOW - 60)


def test_critical_mutes_warning_with_equal_labels() -> None:
    inhibitor = Inhibitor([RULE])
    source = critical(alertname="HighLatency", cluster="eu")
    warning = {"alertname": "HighLatency", "cluster": "eu", "severity": "warning"}
    assert inhibitor.mutes(warning, [source], NOW)
    assert inhibitor.inhibited_by(warning, [source], NOW) == source.fingerprint


def test_different_equal_label_does_not_mute() -> None:
    inhibitor = Inhibitor([RULE])
    source = critical(alertname="HighLatency", cluster="us")
    assert not inhibitor.mutes(
        {"alertname": "HighLatency", "cluster": "eu", "severity": "warning"}, [source], NOW
    )


def test_label_missing_on_both_sides_counts_as_equal() -> None:
    inhibitor = Inhibitor([RULE])
    source = critical(alertname="HighLatency")
    assert inhibitor.mutes({"alertname": "HighLatency", "severity": "warning"}, [source], NOW)


def test_resolved_source_does_not_mute() -> None:
    inhibitor = Inhibitor([RULE])
    source = Alert(
        labels={"severity": "critical", "alertname": "A", "cluster": "eu"},
        starts_at=NOW - 600,
        ends_at=NOW - 1,
    )
    assert not inhibitor.mutes(
        {"alertname": "A", "cluster": "eu", "severity": "warning"}, [source], NOW
    )


def test_non_target_is_never_muted() -> None:
    inhibitor = Inhibitor([RULE])
    source = critical(alertname="A", cluster="eu")
    assert not inhibitor.mutes(
        {"alertname": "A", "cluster": "eu", "severity": "info"}, [source], NOW
    )


def test_alert_matching_both_sides_does_not_mute_itself() -> None:
    rule = InhibitRule(
        source_matchers=tuple(parse_matchers('kind="node"')),
        target_matchers=tuple(parse_matchers('kind="node"')),
        equal=("host",),
    )
    inhibitor = Inhibitor([rule])
    alert = Alert(labels={"kind": "node", "host": "h1"}, starts_at=NOW)
    other = Alert(labels={"kind": "node", "host": "h1", "x": "1"}, starts_at=NOW)
    assert not inhibitor.mutes(alert.labels, [alert, other], NOW)

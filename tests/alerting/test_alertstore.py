"""Receiving, merging and persisting alerts."""

from __future__ import annotations

from pathlib import Path

from inferwatch.alerting.alert import Alert
from inferwatch.alerting.alertstore import AlertStore, StoredAlert, merge
from inferwatch.alerting.nflog import Database

LABELS = {"alertname": "Down", "instance": "a"}


def store(path: str | None = None) -> AlertStore:
    return AlertStore(Database(path), clock=lambda: 1000.0, resolve_timeout_s=300)


def test_missing_times_are_filled_as_alertmanager_does() -> None:
    s = store()
    (item,) = s.put([Alert(LABELS)], now=1000.0)
    assert (item.alert.starts_at, item.alert.ends_at, item.timeout) == (1000.0, 1300.0, True)
    (item,) = s.put([Alert({"x": "y"}, ends_at=900.0)], now=1000.0)
    assert (item.alert.starts_at, item.alert.ends_at, item.timeout) == (900.0, 900.0, False)


def test_overlapping_updates_keep_the_earliest_start() -> None:
    s = store()
    s.put([Alert(LABELS, starts_at=500.0, ends_at=1200.0)], now=1000.0)
    (item,) = s.put([Alert(LABELS, starts_at=900.0, ends_at=1400.0)], now=1010.0)
    assert (item.alert.starts_at, item.alert.ends_at) == (500.0, 1400.0)
    assert len(s.alerts()) == 1


def test_a_later_explicit_end_beats_a_timeout_end() -> None:
    old = StoredAlert(Alert(LABELS, starts_at=0.0, ends_at=2000.0), 10.0, timeout=False)
    new = StoredAlert(Alert(LABELS, starts_at=0.0, ends_at=1500.0), 20.0, timeout=True)
    assert merge(old, new).alert.ends_at == 2000.0
    old_timeout = StoredAlert(old.alert, 10.0, timeout=True)
    assert merge(old_timeout, new).alert.ends_at == 1500.0


def test_a_new_firing_after_resolution_starts_afresh() -> None:
    s = store()
    s.put([Alert(LABELS, starts_at=100.0, ends_at=200.0)], now=1000.0)
    (item,) = s.put([Alert(LABELS, starts_at=900.0, ends_at=1300.0)], now=1000.0)
    assert item.alert.starts_at == 900.0


def test_alerts_survive_reopening_and_resolved_ones_are_collected(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    s = store(path)
    s.put([Alert(LABELS, starts_at=900.0, annotations={"s": "x"}, generator_url="u")], now=1000.0)
    s.put([Alert({"alertname": "Old"}, starts_at=1.0, ends_at=2.0)], now=1000.0)
    reopened = store(path)
    assert {a.fingerprint for a in reopened.alerts()} == {a.fingerprint for a in s.alerts()}
    item = reopened.get(Alert(LABELS).fingerprint)
    assert item is not None and item.alert.annotations == {"s": "x"} and item.timeout
    assert [a.labels for a in reopened.firing(1000.0)] == [LABELS]
    assert reopened.gc(now=1000.0, retention_s=0) == 1
    assert store(path).get(Alert({"alertname": "Old"}).fingerprint) is None

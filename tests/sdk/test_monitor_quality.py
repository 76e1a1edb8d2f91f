"""Monitor.log_prediction / feedback: the quality tracker behind the two-line API."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferwatch import ConfigError, Monitor, Registry


def _families(registry: Registry) -> dict[str, dict[tuple[str, ...], object]]:
    return {f.name: dict(f.samples) for f in registry.snapshot()}


def test_predictions_and_late_labels_become_quality_counters(tmp_path: Path) -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("digits", "1", registry=registry)
    tracker = monitor.quality(log=tmp_path / "p.db", classes=[0, 1])
    try:
        monitor.log_prediction("a", 1, score=[0.2, 0.8], features={"x": 1.5})
        monitor.log_prediction("b", 0, score=0.9)
        assert monitor.feedback("a", 1) == "joined"
        assert monitor.feedback("b", 1) == "joined"
        assert monitor.feedback("b", 0) == "duplicate"
        assert monitor.feedback("zzz", 1) == "pending"
        with pytest.raises(ConfigError) as err:
            monitor.feedback("a", [1])
        assert err.value.field == "label"
        fams = _families(registry)
        assert fams["inferwatch_labels_total"] == {
            ("digits", "1", "true"): 1.0,
            ("digits", "1", "false"): 1.0,
        }
        assert {k: v for k, v in fams["inferwatch_confusion_total"].items() if v} == {
            ("digits", "1", "1", "1"): 1.0,
            ("digits", "1", "1", "0"): 1.0,
        }
        assert tracker.log.get("digits", "1", "a") is not None
    finally:
        tracker.close()


def test_log_prediction_never_raises_into_the_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "inferwatch-predictions.db").mkdir()  # the default log cannot be opened
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("m", registry=registry)
    monitor.log_prediction("r", "x")
    monitor.log_prediction(object(), {1, 2})
    errors = _families(registry)["inferwatch_internal_errors_total"]
    assert errors == {("quality",): 2.0}


def test_the_first_log_prediction_opens_the_default_log_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("m", registry=registry)
    monitor.log_prediction("r1", "cat")
    assert monitor.feedback("r1", "cat") == "joined"
    assert (tmp_path / "inferwatch-predictions.db").exists()
    assert monitor._quality is not None
    monitor._quality.close()

"""Baselines: the online detector, baseline rules over the PromQL engine, CSV scoring."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferwatch._errors import ConfigError
from inferwatch.analyze.baseline import (
    BaselineEvaluator,
    BaselineRule,
    load_baseline_rules,
    score_csv,
)
from inferwatch.analyze.baseline_detector import DAY_S, Detector, DetectorConfig
from inferwatch.cli import app
from inferwatch.promql import Engine
from inferwatch.promql.memstore import MemoryStorage
from inferwatch.sdk.registry import Registry
from inferwatch.tsdb.labels import Labels
from inferwatch.tsdb.series import AppendResult

T0 = 1_700_000_000.0


def test_bounds_absent_until_enough_history() -> None:
    d = Detector(DetectorConfig(min_history=10))
    points = [d.update(T0 + 60 * i, 5.0 + (i % 3)) for i in range(12)]
    assert all(p.upper is None and p.lower is None and p.score == 0 for p in points[:10])
    assert points[10].upper is not None and points[10].lower is not None
    assert points[10].lower < points[10].upper


def test_constant_series_never_gives_nan_or_infinite_bounds() -> None:
    d = Detector()
    for i in range(200):
        p = d.update(T0 + 60 * i, 0.0)
    assert p.upper is not None and p.lower is not None
    assert math.isfinite(p.upper) and math.isfinite(p.lower)
    assert 0.0 <= p.score <= 1.0


def test_nan_values_and_gaps_are_skipped_without_nan_bounds() -> None:
    d = Detector(DetectorConfig(min_history=5))
    for i in range(50):
        value = math.nan if i % 7 == 0 else (math.inf if i == 20 else 10.0 + i % 2)
        p = d.update(T0 + 60 * i + (86_400 if i > 30 else 0), value)
        for bound in (p.upper, p.lower):
            assert bound is None or math.isfinite(bound)
        assert 0.0 <= p.score <= 1.0


def test_spike_scores_high_and_normal_values_low() -> None:
    rng = random.Random(1)
    d = Detector()
    scores = [d.update(T0 + 300 * i, 100 + rng.gauss(0, 1)).score for i in range(500)]
    spike = d.update(T0 + 300 * 500, 130.0)
    assert spike.score > 0.5
    assert max(scores[100:]) < spike.score / 2
    assert spike.upper is not None and spike.value > spike.upper


def test_counter_reset_is_one_anomaly_not_nan() -> None:
    d = Detector()
    for i in range(300):
        d.update(T0 + 60 * i, 1000.0 + i)
    p = d.update(T0 + 60 * 300, 0.0)
    assert p.upper is not None and math.isfinite(p.upper)
    assert p.score > 0.5


def test_daily_seasonality_is_learned_when_history_shows_it() -> None:
    d = Detector()
    step = 300
    for i in range(int(3 * DAY_S / step)):
        t = T0 + step * i
        d.update(t, 100.0 if (t % DAY_S) < DAY_S / 2 else 10.0)
    assert d.model == "daily"
    flat = Detector()
    rng = random.Random(3)
    for i in range(int(3 * DAY_S / step)):
        flat.update(T0 + step * i, 50.0 + rng.gauss(0, 1))
    assert flat.model == "level"


def test_detector_config_rejects_bad_values_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="alpha") as info:
        DetectorConfig(alpha=0.0)
    assert info.value.field == "alpha"
    with pytest.raises(ConfigError, match="min_history"):
        DetectorConfig(min_history=1)


class _Store(MemoryStorage):
    def append(self, ts_ms: int, samples: list[tuple[Labels, float]]) -> AppendResult:
        for labels, value in samples:
            self.add(labels, [ts_ms], [value])
        return AppendResult()


def test_baseline_rule_writes_upper_lower_and_score_series_for_promql_alerts() -> None:
    store = _Store()
    rng = random.Random(2)
    for i in range(60):
        t_ms = int((T0 + 60 * i) * 1000)
        for model in ("a", "b"):
            store.add(
                {"__name__": "latency_p99", "model": model}, [t_ms], [0.1 + rng.random() / 100]
            )
    rule = BaselineRule(
        name="latency_p99", expr="latency_p99", detector=DetectorConfig(min_history=20)
    )
    ev = BaselineEvaluator([rule], engine=Engine(store), storage=store)
    written = [ev.eval(T0 + 60 * i) for i in range(60)]
    assert written[:19] == [0] * 19
    assert written[-1] == 6
    engine = Engine(store)
    t_ms = int((T0 + 60 * 59) * 1000)
    upper = engine.instant_query("latency_p99:upper", t_ms).value
    assert isinstance(upper, list) and len(upper) == 2
    fired = engine.instant_query("latency_p99 > on(model) latency_p99:upper", t_ms).value
    assert fired == []
    # a spike on model b: the ordinary PromQL alert expression finds it
    t_ms = int((T0 + 60 * 60) * 1000)
    store.add({"__name__": "latency_p99", "model": "a"}, [t_ms], [0.105])
    store.add({"__name__": "latency_p99", "model": "b"}, [t_ms], [5.0])
    ev.eval(T0 + 60 * 60)
    fired = engine.instant_query("latency_p99 > on(model) latency_p99:upper", t_ms).value
    assert isinstance(fired, list) and [dict(s.labels)["model"] for s in fired] == ["b"]
    score = engine.instant_query('latency_p99:anomaly_score{model="b"}', t_ms).value
    assert isinstance(score, list) and score[0].v > 0.5


def test_failing_baseline_rule_is_counted_and_others_go_on() -> None:
    store = _Store()
    store.add({"__name__": "x"}, [int(T0 * 1000)], [1.0])
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    rules = [
        BaselineRule(name="bad", expr='label_replace(x, "a", "$1", "b", "(")'),
        BaselineRule(name="x", expr="x", detector=DetectorConfig(min_history=2)),
    ]
    ev = BaselineEvaluator(rules, engine=Engine(store), storage=store, errors=registry)
    ev.eval(T0)
    store.add({"__name__": "x"}, [int((T0 + 60) * 1000)], [1.0])
    store.add({"__name__": "x"}, [int((T0 + 120) * 1000)], [1.0])
    ev.eval(T0 + 60)
    assert ev.eval(T0 + 120) == 3
    assert registry._internal_errors["baseline"] >= 1


def test_baseline_rule_rejects_bad_name_and_unknown_settings() -> None:
    with pytest.raises(ConfigError, match="metric name") as info:
        BaselineRule(name="bad name", expr="x")
    assert info.value.value == "bad name"
    with pytest.raises(ConfigError, match="unknown detector setting 'alfa'"):
        BaselineRule.from_dict({"name": "x", "expr": "x", "detector": {"alfa": 1}})


def test_example_baselines_file_loads() -> None:
    path = Path(__file__).parents[2] / "examples" / "baselines.yml"
    rules = load_baseline_rules(path)
    assert [r.name for r in rules] == ["latency_p99", "request_rate"]


def _series_csv(path: Path, n: int, spike_at: int) -> None:
    rows = ["timestamp,value"]
    for i in range(n):
        value = 130.0 if i == spike_at else 100.0 + (i % 5) * 0.5
        rows.append(f"{T0 + 300 * i},{value}")
    path.write_text("\n".join(rows) + "\n")


def test_score_csv_is_row_by_row_without_look_ahead(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _series_csv(src, 300, 250)
    assert score_csv(src, out) == 300
    full = [line.split(",") for line in out.read_text().splitlines()[1:]]
    # scoring a prefix gives the same scores for the prefix: no row saw the future
    prefix = tmp_path / "prefix.csv"
    prefix.write_text("\n".join(src.read_text().splitlines()[:201]) + "\n")
    score_csv(prefix, tmp_path / "p.csv")
    part = [line.split(",") for line in (tmp_path / "p.csv").read_text().splitlines()[1:]]
    assert part == full[:200]
    assert float(full[250][2]) > 0.5 > float(full[249][2])


def test_score_csv_error_names_file_line_and_field(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n")
    with pytest.raises(ConfigError, match=r"in\.csv:3: value: 'abc'"):
        score_csv(src, tmp_path / "out.csv")


def test_cli_anomaly_score(tmp_path: Path) -> None:
    src, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _series_csv(src, 100, 90)
    result = CliRunner().invoke(
        app, ["anomaly", "score", "--input", str(src), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "scored 100 rows" in result.output
    assert out.read_text().splitlines()[0] == "timestamp,value,score"
    bad = tmp_path / "bad.csv"
    bad.write_text("time,v\n1,2\n")
    result = CliRunner().invoke(
        app, ["anomaly", "score", "--input", str(bad), "--output", str(out)]
    )
    assert result.exit_code == 1

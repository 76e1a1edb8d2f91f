from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from inferwatch import Registry
from inferwatch._errors import ConfigError
from inferwatch.analyze.scaling import (
    ReplicaAdvisor,
    ScalingAdvisor,
    ScalingPolicy,
    ScalingQueries,
    ScalingSignals,
    SeasonalForecaster,
    learn_capacity,
)
from inferwatch.exposition import render
from inferwatch.promql.engine import Engine
from inferwatch.testing import FakeClock
from inferwatch.tsdb.labels import make_labels
from inferwatch.tsdb.store import Store

T0 = 1_700_000_000.0


def advisor(**kw: object) -> ReplicaAdvisor:
    defaults: dict[str, object] = {
        "capacity_rps": 10.0,
        "target_utilization": 1.0,
        "scale_up_cooldown_s": 0.0,
        "horizon_s": 0.0,
    }
    defaults.update(kw)
    return ReplicaAdvisor(ScalingPolicy(**defaults), clock=FakeClock(T0))  # type: ignore[arg-type]


def test_replicas_follow_request_rate_over_capacity() -> None:
    a = advisor()
    advice = a.update(ScalingSignals(request_rate=45.0), T0)
    assert (advice.replicas, advice.reason) == (5, "request_rate")


def test_headroom_from_target_utilization() -> None:
    a = advisor(target_utilization=0.5)
    assert a.update(ScalingSignals(request_rate=45.0), T0).replicas == 9


def test_largest_need_wins_and_names_its_signal() -> None:
    a = advisor(queue_per_replica=4.0, gpu_target=0.5)
    advice = a.update(
        ScalingSignals(
            request_rate=10.0, queue_depth=30.0, gpu_utilization=0.9, current_replicas=2
        ),
        T0,
    )
    assert (advice.replicas, advice.reason) == (8, "queue_depth")
    b = advisor(queue_per_replica=4.0, gpu_target=0.5)
    advice = b.update(ScalingSignals(gpu_utilization=0.9, current_replicas=5), T0)
    assert (advice.replicas, advice.reason) == (9, "gpu_utilization")


@pytest.mark.parametrize("missing", [None, math.nan, math.inf, -1.0])
def test_missing_signal_keeps_current_advice(missing: float | None) -> None:
    a = advisor()
    assert a.update(ScalingSignals(request_rate=80.0), T0).replicas == 8
    advice = a.update(ScalingSignals(request_rate=missing), T0 + 600)
    assert (advice.replicas, advice.reason) == (8, "no_data")


def test_no_data_at_start_keeps_running_replicas_not_minimum() -> None:
    a = advisor(min_replicas=1)
    advice = a.update(ScalingSignals(current_replicas=6), T0)
    assert (advice.replicas, advice.reason) == (6, "no_data")


def test_clamped_to_min_and_max_with_reason() -> None:
    a = advisor(min_replicas=2, max_replicas=5)
    assert a.update(ScalingSignals(request_rate=1.0), T0).reason == "min_replicas"
    advice = a.update(ScalingSignals(request_rate=500.0), T0 + 60)
    assert (advice.replicas, advice.reason) == (5, "max_replicas")


def test_scale_down_waits_for_stabilization_window() -> None:
    a = advisor(stabilization_s=300.0, scale_down_cooldown_s=0.0, tolerance=0.0)
    a.update(ScalingSignals(request_rate=100.0), T0)
    t = T0
    seen = []
    for _ in range(10):
        t += 60
        seen.append(a.update(ScalingSignals(request_rate=20.0), t).replicas)
    assert seen[:4] == [10, 10, 10, 10]
    assert seen[-1] == 2


def test_no_flapping_on_oscillating_load() -> None:
    a = advisor(stabilization_s=300.0, scale_down_cooldown_s=300.0)
    changes = 0
    last = None
    for i in range(120):  # load alternating between 60 and 40 rps every minute
        r = a.update(ScalingSignals(request_rate=60.0 if i % 2 else 40.0), T0 + 60 * i).replicas
        changes += last is not None and r != last
        last = r
    assert last == 6
    assert changes <= 1


def test_scale_up_cooldown_holds_second_step() -> None:
    a = advisor(scale_up_cooldown_s=120.0)
    a.update(ScalingSignals(request_rate=20.0), T0)
    a.update(ScalingSignals(request_rate=50.0), T0 + 200)
    held = a.update(ScalingSignals(request_rate=90.0), T0 + 260)
    assert (held.replicas, held.reason, held.desired) == (5, "cooldown", 9)
    assert a.update(ScalingSignals(request_rate=90.0), T0 + 330).replicas == 9


def test_small_drop_within_tolerance_is_ignored() -> None:
    a = advisor(stabilization_s=0.0, scale_down_cooldown_s=0.0, tolerance=0.2)
    a.update(ScalingSignals(request_rate=100.0), T0)
    assert a.update(ScalingSignals(request_rate=90.0), T0 + 60).replicas == 10
    assert a.update(ScalingSignals(request_rate=50.0), T0 + 120).replicas == 5


def daily(t: float) -> float:
    """A request rate with a sharp daily peak at 12:00-13:00."""
    hour = (t % 86400) / 3600
    return 100.0 if 12 <= hour < 13 else 10.0


def test_predictive_scales_up_before_a_known_daily_peak() -> None:
    predictive = advisor(horizon_s=900.0)
    reactive = advisor(horizon_s=0.0)
    start = 86400 * 19700  # midnight
    t = float(start)
    stop = start + 2 * 86400 + 11 * 3600 + 50 * 60  # day 3, 10 minutes before the peak
    while t < stop:
        for a in (predictive, reactive):
            a.update(ScalingSignals(request_rate=daily(t)), t)
        t += 60
    assert daily(t) == 10.0
    p = predictive.update(ScalingSignals(request_rate=daily(t)), t)
    r = reactive.update(ScalingSignals(request_rate=daily(t)), t)
    assert (p.replicas, p.reason) == (10, "forecast")
    assert r.replicas == 1


def test_forecaster_says_nothing_before_a_season() -> None:
    f = SeasonalForecaster(season_s=3600, bins=60)
    for i in range(59):
        f.observe(T0 + 60 * i, 5.0)
    assert f.forecast(T0 + 59 * 60, 300) is None
    f.observe(T0 + 3600, 5.0)
    assert f.forecast(T0 + 3600, 300) == pytest.approx(5.0)


def test_learn_capacity_finds_the_knee_of_latency_vs_load() -> None:
    rng = np.random.default_rng(1)
    mu = 50.0
    loads = rng.uniform(1, 49, 500)
    lat = np.log(100) / (mu - loads) * rng.uniform(0.95, 1.05, loads.size)
    cap = learn_capacity(zip(loads.tolist(), lat.tolist(), strict=True), 0.3)
    assert cap is not None
    assert cap == pytest.approx(mu - math.log(100) / 0.3, rel=0.1)


def test_learn_capacity_refuses_too_little_or_hopeless_data() -> None:
    assert learn_capacity([(1.0, 0.1)] * 5, 0.3) is None
    assert learn_capacity([(float(i), 1.0) for i in range(50)], 0.3) is None
    assert learn_capacity([(float(i), 0.1) for i in range(50)], 0.3) == 49.0
    assert learn_capacity([(math.nan, 0.1)] * 50, 0.3) is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("capacity_rps", 0.0), ("target_utilization", 1.5), ("max_replicas", 0), ("tolerance", 1.0)],
)
def test_bad_policy_names_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        ScalingPolicy(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field
    assert repr(value) in str(info.value)


def test_collector_exports_replicas_and_reason() -> None:
    clock = FakeClock(T0)
    scaling = ScalingAdvisor({"fraud": ScalingPolicy(capacity_rps=10.0)}, clock=clock)
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    registry.register(scaling)
    assert "inferwatch_recommended_replicas{" not in render(registry, None)[0].decode()
    scaling.observe("fraud", ScalingSignals(request_rate=40.0))
    body = render(registry, None)[0].decode()
    assert 'inferwatch_recommended_replicas{model="fraud"} 5.0' in body
    assert 'inferwatch_recommended_replicas_reason{model="fraud",reason="request_rate"} 1.0' in body


def test_unknown_model_is_config_error() -> None:
    scaling = ScalingAdvisor({"fraud": ScalingPolicy(capacity_rps=10.0)})
    with pytest.raises(ConfigError, match="'spam'"):
        scaling.observe("spam", ScalingSignals(request_rate=1.0))


def test_evaluate_reads_signals_with_promql_over_the_store(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", fsync="never", retention_seconds=None) as store:
        ts = np.arange(0, 600, 15, dtype=np.int64) * 1000 + int(T0 * 1000)
        for model, rps in (("fraud", 40.0), ("spam", 5.0)):
            labels = make_labels({"__name__": "inferwatch_inferences_total", "model": model})
            store.append_series(labels, ts, (np.arange(ts.size) * 15 * rps).astype(np.float64))
        gpu = make_labels({"__name__": "gpu_utilization_ratio", "gpu": "0"})
        store.append_series(gpu, ts, np.full(ts.size, 0.95))
        errors: list[str] = []
        scaling = ScalingAdvisor(
            {
                "fraud": ScalingPolicy(capacity_rps=10.0, target_utilization=1.0),
                "spam": ScalingPolicy(capacity_rps=10.0, gpu_target=0.5),
                "idle": ScalingPolicy(capacity_rps=10.0),
            },
            queries=ScalingQueries(queue_depth="sum by (model) (nonexistent_metric)"),
            on_error=lambda c, e: errors.append(c),
        )
        at = T0 + 585
        out = scaling.evaluate(Engine(store), at)
        assert (out["fraud"].replicas, out["fraud"].reason) == (4, "request_rate")
        assert out["spam"].reason == "request_rate"
        assert out["idle"].reason == "no_data"
        # the next evaluation sees the GPU hot on spam's one replica: two are needed
        later = scaling.evaluate(Engine(store), at + 60)["spam"]
        assert (later.replicas, later.reason) == (2, "gpu_utilization")
        assert scaling.advice("spam") is not None
        assert errors == []

"""Guards under synthetic load, with a fake clock and a fake GPU."""

from __future__ import annotations

import logging

import pytest

from inferwatch import ConfigError, Monitor, Registry, Rejected
from inferwatch.health.guard import (
    AdaptiveBatchSize,
    BatchController,
    CircuitBreaker,
    CircuitController,
    Condition,
    Shed,
    ShedController,
)
from inferwatch.testing import FakeClock, FakeGPU, FakeNVML

GiB = 2**30


def families(registry: Registry) -> dict[str, dict[tuple[str, ...], object]]:
    return {fam.name: dict(fam.samples) for fam in registry.snapshot()}


def admitted(monitor: Monitor, n: int) -> int:
    """How many of ``n`` requests the monitor's guards admit."""
    count = 0
    for _ in range(n):
        try:
            monitor.admit()
        except Rejected:
            continue
        count += 1
    return count


def serve(monitor: Monitor, ok: int = 0, failed: int = 0, latency_s: float = 0.0) -> None:
    """Run ``ok`` successful and ``failed`` failing tracked inferences; with
    ``latency_s``, successes are recorded with that latency (a synthetic model)."""

    @monitor.track
    def predict(fail: bool) -> int:
        if fail:
            raise ValueError("bad input")
        return 1

    if latency_s:
        monitor._recorder.ok.extend([int(latency_s * 1e9)] * ok)
    else:
        for _ in range(ok):
            predict(False)
    for _ in range(failed):
        with pytest.raises(ValueError):
            predict(True)


# -- conditions and policies --------------------------------------------------------------


def test_condition_parses_signal_operator_and_threshold() -> None:
    cond = Condition.parse("gpu_memory_used_ratio >= 0.8")
    assert (cond.signal, cond.op, cond.threshold) == ("gpu_memory_used_ratio", ">=", 0.8)
    assert cond.holds(0.8) and not cond.holds(0.79) and not cond.holds(None)
    assert str(cond) == "gpu_memory_used_ratio >= 0.8"


@pytest.mark.parametrize(
    ("text", "field"),
    [("gpu_memory_used_ratio", "when"), ("gpu_memory_used_ratio > lots", "threshold")],
)
def test_unreadable_condition_names_the_field(text: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Condition.parse(text)
    assert info.value.field == field


def test_unknown_signal_is_rejected_at_start(monitor: Monitor) -> None:
    with pytest.raises(ConfigError, match="unknown signal 'gpu_mem'") as info:
        monitor.guard("g", Shed("gpu_mem > 0.8"))
    assert info.value.field == "signal"
    assert info.value.value == "gpu_mem"
    assert len(monitor.guards) == 0


@pytest.mark.parametrize(
    ("when", "value"),
    [("gpu_memory_used_ratio > 80", 80.0), ("latency_p99_seconds > -1", -1.0)],
)
def test_nonsense_threshold_is_rejected_at_start(monitor: Monitor, when: str, value: float) -> None:
    with pytest.raises(ConfigError) as info:
        monitor.guard("g", Shed(when))
    assert info.value.field == "threshold"
    assert info.value.value == value


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Shed("error_ratio > 0.5", fraction=1.5), "fraction"),
        (lambda: Shed("error_ratio > 0.5", fraction=0), "fraction"),
        (lambda: Shed("error_ratio > 0.5", for_s=-1), "for_s"),
        (lambda: CircuitBreaker(open_s=0), "open_s"),
        (lambda: CircuitBreaker(half_open_requests=0), "half_open_requests"),
        (lambda: AdaptiveBatchSize(1.0, min_size=8, max_size=4), "min_size"),
        (lambda: AdaptiveBatchSize(1.0, decrease=1.0), "decrease"),
        (lambda: AdaptiveBatchSize(-0.5), "latency_budget_s"),
        (lambda: AdaptiveBatchSize(1.0, initial=100, max_size=64), "initial"),
    ],
)
def test_bad_policy_values_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        make()  # type: ignore[operator]
    assert info.value.field == field


def test_user_defined_signal_may_be_named(monitor: Monitor, clock: FakeClock) -> None:
    depth = [0.0]
    guard = monitor.guard(
        "queue", Shed("queue_depth > 100"), signals={"queue_depth": lambda: depth[0]}, clock=clock
    )
    assert admitted(monitor, 10) == 10
    depth[0] = 500
    clock.advance(1)
    assert admitted(monitor, 10) == 0
    assert guard.state == "shedding"


def test_duplicate_guard_name_is_refused(monitor: Monitor) -> None:
    monitor.guard("g", CircuitBreaker())
    with pytest.raises(ConfigError) as info:
        monitor.guard("g", CircuitBreaker())
    assert info.value.field == "name"


# -- shedding on GPU memory ---------------------------------------------------------------


def test_shedding_starts_and_stops_at_the_gpu_memory_threshold(
    monitor: Monitor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    gpu = FakeGPU(memory_total=80 * GiB, memory_used=40 * GiB)
    guard = monitor.guard(
        "gpu-memory",
        Shed("gpu_memory_used_ratio > 0.8", fraction=0.5, retry_after_s=5),
        nvml=FakeNVML(gpus=[gpu]),
        clock=clock,
    )
    caplog.set_level(logging.INFO, logger="inferwatch.guard")
    assert admitted(monitor, 100) == 100
    gpu.memory_used = 64 * GiB  # exactly 80%: not above
    clock.advance(1)
    assert admitted(monitor, 100) == 100
    gpu.memory_used = 70 * GiB
    assert admitted(monitor, 100) == 100  # not re-read until the interval passed
    clock.advance(1)
    assert admitted(monitor, 100) == 50
    assert guard.state == "shedding"
    with pytest.raises(Rejected) as info:
        for _ in range(2):
            monitor.admit()
    assert info.value.retry_after == 5
    assert "gpu_memory_used_ratio" in str(info.value)
    gpu.memory_used = 60 * GiB
    clock.advance(1)
    assert admitted(monitor, 100) == 100
    assert guard.state == "admitting"
    assert guard.rejected == 51
    messages = [r.getMessage() for r in caplog.records if r.name == "inferwatch.guard"]
    assert len(messages) == 2
    assert "admitting -> shedding" in messages[0] and "gpu-memory" in messages[0]
    assert "shedding -> admitting" in messages[1]
    assert caplog.records[0].levelno == logging.WARNING


def test_shedding_waits_for_the_condition_to_hold_and_ramps(
    monitor: Monitor, clock: FakeClock
) -> None:
    gpu = FakeGPU(memory_total=100, memory_used=90)
    monitor.guard(
        "gpu",
        Shed("gpu_memory_used_ratio > 0.8", fraction=1.0, for_s=3, ramp_s=4),
        nvml=FakeNVML(gpus=[gpu]),
        clock=clock,
    )
    seen = []
    for _ in range(9):
        seen.append(100 - admitted(monitor, 100))
        clock.advance(1)
    # Holds from t=0; shedding from t=3, ramping to all requests over 4 s.
    assert seen[:3] == [0, 0, 0]
    assert 0 < seen[3] < seen[4] < seen[5] < seen[6] <= 100
    assert seen[7] == seen[8] == 100


def test_shedding_never_starts_without_a_gpu(monitor: Monitor, clock: FakeClock) -> None:
    guard = monitor.guard(
        "gpu", Shed("gpu_memory_used_ratio > 0.8"), nvml=FakeNVML.without_driver(), clock=clock
    )
    for _ in range(3):
        clock.advance(1)
        assert admitted(monitor, 10) == 10
    assert guard.last_values == {"gpu_memory_used_ratio": None}


def test_guard_series_are_exported(monitor: Monitor, clock: FakeClock, registry: Registry) -> None:
    gpu = FakeGPU(memory_total=100, memory_used=90)
    monitor.guard(
        "gpu", Shed("gpu_memory_used_ratio > 0.8"), nvml=FakeNVML(gpus=[gpu]), clock=clock
    )
    admitted(monitor, 3)
    fams = families(registry)
    lv = ("digits", "1", "gpu")
    assert fams["inferwatch_guard_state"] == {lv: 1.0}
    assert fams["inferwatch_guard_shed_ratio"] == {lv: 1.0}
    assert fams["inferwatch_guard_rejected_total"] == {lv: 3.0}
    assert fams["inferwatch_guard_transitions_total"] == {(*lv, "shedding"): 1.0}
    assert fams["inferwatch_guard_signal_value"] == {(*lv, "gpu_memory_used_ratio"): 0.9}


# -- circuit breaker ----------------------------------------------------------------------


def test_circuit_opens_half_opens_and_closes(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    guard = monitor.guard(
        "errors",
        CircuitBreaker("error_ratio > 0.2", for_s=30, open_s=60, half_open_requests=3),
        clock=clock,
    )
    for _ in range(5):  # healthy traffic
        serve(monitor, ok=20, failed=1)
        clock.advance(1)
        assert admitted(monitor, 1) == 1
    assert guard.state == "closed"
    opened_after = 0
    for second in range(1, 60):  # 30% errors from now on
        serve(monitor, ok=7, failed=3)
        clock.advance(1)
        if admitted(monitor, 1) == 0:
            opened_after = second
            break
    # The 10 s window's ratio passes 20% within a few seconds, then must hold for 30 s.
    assert 30 < opened_after <= 40
    assert guard.state == "open"
    with pytest.raises(Rejected) as info:
        monitor.admit()
    assert info.value.retry_after == 60
    clock.advance(59)
    assert admitted(monitor, 10) == 0
    clock.advance(1)
    assert admitted(monitor, 10) == 3  # half-open: three trials only
    assert guard.state == "half_open"
    serve(monitor, ok=3)
    assert admitted(monitor, 10) == 10
    assert guard.state == "closed"
    clock.advance(1)
    assert admitted(monitor, 5) == 5  # the old errors do not open it again
    transitions = families(registry)["inferwatch_guard_transitions_total"]
    assert {k[-1]: v for k, v in transitions.items()} == {
        "open": 1.0,
        "half_open": 1.0,
        "closed": 1.0,
    }


def test_failed_trial_reopens_the_circuit(monitor: Monitor, clock: FakeClock) -> None:
    guard = monitor.guard(
        "errors", CircuitBreaker("error_ratio > 0.5", for_s=0, open_s=10), clock=clock
    )
    serve(monitor, ok=2, failed=10)
    clock.advance(1)
    assert admitted(monitor, 1) == 0
    assert guard.state == "open"
    clock.advance(10)
    assert admitted(monitor, 1) == 1
    assert guard.state == "half_open"
    serve(monitor, failed=1)
    assert admitted(monitor, 5) == 0
    assert guard.state == "open"
    clock.advance(9.5)
    with pytest.raises(Rejected) as info:
        monitor.admit()
    assert info.value.retry_after == 1.0  # never below a second
    assert guard.transitions == {"open": 2, "half_open": 1}


def test_circuit_needs_min_requests_in_the_window(monitor: Monitor, clock: FakeClock) -> None:
    guard = monitor.guard(
        "errors", CircuitBreaker("error_ratio > 0.2", for_s=0, min_requests=10), clock=clock
    )
    serve(monitor, failed=3)
    clock.advance(1)
    assert admitted(monitor, 1) == 1
    assert guard.last_values == {"error_ratio": None}


def test_rejected_requests_do_not_count_as_errors(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    monitor.guard("errors", CircuitBreaker(for_s=0, open_s=60), clock=clock)
    serve(monitor, ok=5, failed=5)
    clock.advance(1)

    @monitor.track
    def predict() -> int:
        monitor.admit()
        return 1

    for _ in range(4):
        with pytest.raises(Rejected):
            predict()
    totals = families(registry)["inferwatch_inferences_total"]
    assert totals[("digits", "1", "rejected", "")] == 4
    assert totals[("digits", "1", "error", "ValueError")] == 5


# -- adaptive batch size ------------------------------------------------------------------


def test_batch_size_rises_under_budget_and_falls_over_it(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    guard = monitor.guard(
        "batch",
        AdaptiveBatchSize(
            latency_budget_s=1.0, min_size=2, max_size=6, initial=4, interval_s=5, decrease=0.5
        ),
        clock=clock,
    )
    sizes = []
    for latency in (0.2, 0.2, 0.2, 0.2, 1.5, 1.5, 1.5, 0.5):
        serve(monitor, ok=20, latency_s=latency)
        clock.advance(5)
        sizes.append(guard.batch_size())
    # first read at t=5: +1 each interval to the max 6; halved when over, not below 2.
    assert sizes == [5, 6, 6, 6, 3, 2, 2, 3]
    assert families(registry)["inferwatch_guard_batch_size"] == {("digits", "1", "batch"): 3.0}


def test_batch_size_stays_without_traffic(monitor: Monitor, clock: FakeClock) -> None:
    guard = monitor.guard("batch", AdaptiveBatchSize(1.0, initial=8), clock=clock)
    for _ in range(3):
        clock.advance(5)
        assert guard.batch_size() == 8
    with pytest.raises(ConfigError):
        monitor.guard("other", CircuitBreaker()).batch_size()


def test_batch_signal_must_be_a_latency(monitor: Monitor) -> None:
    with pytest.raises(ConfigError) as info:
        monitor.guard("b", AdaptiveBatchSize(1.0, signal="error_ratio"))
    assert info.value.field == "signal"


# -- the pure controllers -----------------------------------------------------------------


def test_shed_controller_spreads_rejections_evenly() -> None:
    ctl = ShedController(Shed("in_flight > 10", fraction=0.25))
    ctl.update(0.0, {"in_flight": 11.0})
    decisions = [ctl.admit(0.0) is None for _ in range(8)]
    assert decisions == [True, True, True, False, True, True, True, False]


def test_circuit_controller_from_values_only() -> None:
    ctl = CircuitController(CircuitBreaker("error_ratio > 0.2", for_s=2, open_s=5))
    assert ctl.update(0, {"error_ratio": 0.5}, (0, 0)) is None
    assert ctl.update(1, {"error_ratio": 0.1}, (0, 0)) is None  # the timer restarts
    assert ctl.update(2, {"error_ratio": 0.5}, (0, 0)) is None
    change = ctl.update(4, {"error_ratio": 0.5}, (0, 0))
    assert change is not None and change.new == 1
    assert ctl.admit(6) == 3
    assert ctl.update(9, {}, (10, 4)) is not None and ctl.state == 2
    assert [ctl.admit(9) for _ in range(6)] == [None] * 5 + [1.0]
    assert ctl.update(9, {}, (14, 4)) is None
    change = ctl.update(9, {}, (15, 4))
    assert change is not None and ctl.state == 0


def test_batch_controller_keeps_bounds() -> None:
    ctl = BatchController(AdaptiveBatchSize(0.1, min_size=1, max_size=3, interval_s=1))
    for t in range(5):
        ctl.update(float(t), {"latency_p99_seconds": 0.05})
    assert ctl.size == 3
    for t in range(5, 10):
        ctl.update(float(t), {"latency_p99_seconds": 0.5})
    assert ctl.size == 1


def test_a_broken_signal_never_raises_into_the_service(
    monitor: Monitor, clock: FakeClock, registry: Registry
) -> None:
    def broken() -> float:
        raise OSError("sensor gone")

    monitor.guard("g", Shed("temp > 1"), signals={"temp": broken}, clock=clock)
    assert admitted(monitor, 5) == 5
    errors = families(registry)["inferwatch_internal_errors_total"]
    assert errors[("guard:temp",)] == 1

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from inferwatch import ConfigError, Registry
from inferwatch.health import Readiness, ReadinessReport
from inferwatch.testing import FakeClock, FakeGPU, FakeNVML


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


class Model:
    """A canary target that counts its calls and can be told to answer wrong."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.calls = 0
        self.answer = 3
        self.seconds = 0.0
        self.clock = clock

    def predict(self, x: Any) -> int:
        self.calls += 1
        if self.clock is not None and self.seconds:
            self.clock.advance(self.seconds)  # "takes" this long on the fake clock
        return self.answer


def expect_three(output: Any) -> bool:
    if output != 3:
        raise AssertionError(f"expected digit 3, got {output}")
    return True


def make(clock: FakeClock, model: Model, **options: Any) -> Readiness:
    options.setdefault("canary", model.predict)
    options.setdefault("samples", ["row"])
    options.setdefault("validator", expect_three)
    return Readiness(model="digits", version="1", clock=clock).configure(**options)


def statuses(report: ReadinessReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_ready_when_the_canary_passes(clock: FakeClock) -> None:
    model = Model()
    report = make(clock, model).check()
    assert report.ready and report.http_status == 200
    assert statuses(report) == {"model_loaded": "ok", "canary": "ok"}
    assert report.to_json()["status"] == "ok"
    assert report.to_json()["cached_at"] == clock()


def test_validator_failure_makes_it_not_ready_with_the_reason(clock: FakeClock) -> None:
    model = Model()
    model.answer = 7
    report = make(clock, model).check()
    assert report.http_status == 503
    canary = report.check("canary")
    assert canary is not None and canary.status == "fail"
    assert canary.reason == "sample 0: validator rejected the output: expected digit 3, got 7"


def test_a_falsy_validator_result_is_a_rejection(clock: FakeClock) -> None:
    model = Model()
    report = make(clock, model, validator=lambda out: out == 9).check()
    canary = report.check("canary")
    assert canary is not None
    assert canary.reason == "sample 0: validator rejected the output 3"


def test_readiness_recovers_once_the_cache_expires(clock: FakeClock) -> None:
    model = Model()
    model.answer = 7
    readiness = make(clock, model, cache_s=10.0)
    assert not readiness.check().ready
    model.answer = 3
    assert not readiness.check().ready  # still the cached failure
    clock.advance(10.0)
    assert readiness.check().ready


def test_cached_result_does_not_run_the_canary_again(clock: FakeClock) -> None:
    model = Model()
    readiness = make(clock, model, cache_s=5.0)
    for _ in range(5):
        readiness.check()
        clock.advance(0.5)
    assert model.calls == 1
    clock.advance(5.0)
    readiness.check()
    assert model.calls == 2


def test_canary_runs_once_per_sample(clock: FakeClock) -> None:
    model = Model()
    make(clock, model, samples=["a", "b", "c"]).check()
    assert model.calls == 3


def test_canary_without_samples_is_called_with_no_arguments(clock: FakeClock) -> None:
    calls: list[tuple[Any, ...]] = []

    def canary(*args: Any) -> int:
        calls.append(args)
        return 3

    readiness = Readiness(clock=clock).configure(canary=canary, validator=expect_three)
    assert readiness.check().ready
    assert calls == [()]


def test_canary_over_the_latency_budget_fails_with_the_measured_time(clock: FakeClock) -> None:
    model = Model(clock)
    model.seconds = 2.0
    report = make(clock, model, latency_budget_s=0.5).check()
    canary = report.check("canary")
    assert canary is not None and canary.status == "fail"
    assert canary.reason == "canary took 2.000 s, over the latency budget of 0.5 s"
    assert canary.duration_seconds == 2.0


def test_canary_that_raises_fails_with_type_and_message(clock: FakeClock) -> None:
    def broken(x: Any) -> int:
        raise ValueError("weights are NaN")

    report = make(clock, Model(), canary=broken).check()
    canary = report.check("canary")
    assert canary is not None
    assert canary.reason == "canary raised ValueError: weights are NaN on sample 0"


def test_hung_canary_times_out_and_no_second_one_starts(clock: FakeClock) -> None:
    release = threading.Event()
    calls: list[int] = []

    def hangs(x: Any) -> int:
        calls.append(1)
        release.wait(30)
        return 3

    readiness = make(clock, Model(), canary=hangs, canary_timeout_s=0.2, cache_s=1.0)
    try:
        first = readiness.check().check("canary")
        assert first is not None and first.reason == "canary timed out after 0.2 s"
        clock.advance(1.0)
        second = readiness.check().check("canary")
        assert second is not None and second.status == "fail"
        assert "still running" in second.reason and "not starting another" in second.reason
        assert len(calls) == 1
    finally:
        release.set()
    # Once the stuck canary ends, the next evaluation runs a fresh one.
    clock.advance(1.0)
    wait_until(lambda: (clock.advance(1.0), readiness.check().ready)[1])
    assert len(calls) == 2


def test_async_canary_is_awaited(clock: FakeClock) -> None:
    async def predict(x: Any) -> int:
        await asyncio.sleep(0)
        return 3

    readiness = make(clock, Model(), canary=predict)
    assert readiness.check().ready  # from sync code: its own event loop on a thread
    clock.advance(60)
    assert asyncio.run(readiness.check_async()).ready  # on the caller's loop


def test_hung_async_canary_is_cancelled_at_the_timeout(clock: FakeClock) -> None:
    cancelled: list[bool] = []

    async def hangs(x: Any) -> int:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return 3

    readiness = make(clock, Model(), canary=hangs, canary_timeout_s=0.1)

    async def scenario() -> ReadinessReport:
        report = await readiness.check_async()
        await asyncio.sleep(0)  # let the cancellation land
        return report

    report = asyncio.run(scenario())
    canary = report.check("canary")
    assert canary is not None and canary.reason == "canary timed out after 0.1 s"
    assert cancelled == [True]


def test_concurrent_requests_share_one_evaluation(clock: FakeClock) -> None:
    gate = threading.Event()
    calls: list[int] = []

    def slow(x: Any) -> int:
        calls.append(1)
        gate.wait(10)
        return 3

    readiness = make(clock, Model(), canary=slow)
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(readiness.check().ready))]
    threads.append(threading.Thread(target=lambda: results.append(readiness.check().ready)))
    for t in threads:
        t.start()
    wait_until(lambda: len(calls) == 1)
    gate.set()
    for t in threads:
        t.join(10)
    assert results == [True, True]
    assert len(calls) == 1


def test_model_not_loaded_fails_and_skips_the_canary(clock: FakeClock) -> None:
    model = Model()
    readiness = make(clock, model, model_loaded=False)
    report = readiness.check()
    assert statuses(report) == {"model_loaded": "fail", "canary": "skip"}
    assert model.calls == 0
    readiness.set_model_loaded(True)  # takes effect at once, despite the cache
    assert readiness.check().ready
    assert model.calls == 1


def test_model_loaded_callable_is_asked(clock: FakeClock) -> None:
    loaded = {"value": False}
    readiness = Readiness(clock=clock).configure(model_loaded=lambda: loaded["value"], cache_s=0)
    assert not readiness.check().ready
    loaded["value"] = True
    assert readiness.check().ready


def test_unknown_load_state_counts_as_loaded(clock: FakeClock) -> None:
    report = Readiness(clock=clock).check()
    assert report.ready
    loaded = report.check("model_loaded")
    assert loaded is not None and "never called" in loaded.reason


def test_required_gpu_absent_fails_and_skips_the_canary(clock: FakeClock) -> None:
    model = Model()
    readiness = make(clock, model, requires_gpu=True, nvml=FakeNVML.without_driver())
    report = readiness.check()
    assert statuses(report) == {"model_loaded": "ok", "gpu": "fail", "canary": "skip"}
    gpu = report.check("gpu")
    assert gpu is not None and gpu.reason == "the model requires a GPU, but NVML reports none"
    assert model.calls == 0


def test_required_gpu_present_passes(clock: FakeClock) -> None:
    readiness = make(clock, Model(), requires_gpu=True, nvml=FakeNVML(gpus=[FakeGPU()]))
    report = readiness.check()
    assert statuses(report) == {"model_loaded": "ok", "gpu": "ok", "canary": "ok"}


def test_gpu_that_appears_later_makes_it_ready(clock: FakeClock) -> None:
    nvml = FakeNVML.without_driver()
    readiness = make(clock, Model(), requires_gpu=True, nvml=nvml, cache_s=1)
    assert not readiness.check().ready
    nvml.init_error = None
    nvml.gpus.append(FakeGPU())
    clock.advance(1)
    assert readiness.check().ready


def samples_of(registry: Registry, name: str) -> dict[tuple[str, ...], Any]:
    for fam in registry.snapshot():
        if fam.name == name:
            return dict(fam.samples)
    return {}


def test_metrics_follow_the_last_evaluation(clock: FakeClock) -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    model = Model(clock)
    model.seconds = 0.25
    readiness = make(clock, model, model_loaded=True)
    registry.register(readiness)
    readiness.check()
    mv = ("digits", "1")
    assert samples_of(registry, "inferwatch_model_loaded") == {mv: 1.0}
    assert samples_of(registry, "inferwatch_ready") == {mv: 1.0}
    assert samples_of(registry, "inferwatch_canary_success") == {mv: 1.0}
    assert samples_of(registry, "inferwatch_canary_duration_seconds") == {mv: 0.25}
    model.answer = 0
    clock.advance(60)
    readiness.check()
    assert samples_of(registry, "inferwatch_ready") == {mv: 0.0}
    assert samples_of(registry, "inferwatch_canary_success") == {mv: 0.0}
    assert samples_of(registry, "inferwatch_readiness_checks_total") == {
        (*mv, "model_loaded", "ok"): 2.0,
        (*mv, "canary", "ok"): 1.0,
        (*mv, "canary", "fail"): 1.0,
    }
    readiness.set_model_loaded(False)
    assert samples_of(registry, "inferwatch_model_loaded") == {mv: 0.0}


def test_no_series_before_anything_is_known(clock: FakeClock) -> None:
    assert Readiness(clock=clock).collect() == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"canary": "predict"}, "canary"),
        ({"canary": print, "validator": 3}, "validator"),
        ({"validator": bool}, "validator"),
        ({"canary": print, "samples": []}, "samples"),
        ({"canary": print, "latency_budget_s": 0}, "latency_budget_s"),
        ({"canary": print, "canary_timeout_s": -1.0}, "canary_timeout_s"),
        ({"cache_s": float("nan")}, "cache_s"),
        ({"requires_gpu": "yes"}, "requires_gpu"),
        ({"model_loaded": "yes"}, "model_loaded"),
    ],
)
def test_bad_configuration_names_the_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        Readiness().configure(**options)
    assert info.value.field == field


def test_set_model_loaded_rejects_non_bool() -> None:
    with pytest.raises(ConfigError, match="True or False"):
        Readiness().set_model_loaded("yes")  # type: ignore[arg-type]


def test_state_change_during_an_evaluation_is_not_cached(clock: FakeClock) -> None:
    gate = threading.Event()
    started = threading.Event()

    def slow(x: Any) -> int:
        started.set()
        gate.wait(10)
        return 3

    readiness = make(clock, Model(), canary=slow, cache_s=60)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(readiness.check().ready))
    thread.start()
    assert started.wait(10)
    readiness.set_model_loaded(False)
    gate.set()
    thread.join(10)
    assert results == [True]  # the evaluation already under way answers its caller
    assert not readiness.check().ready  # but the next one does not reuse it

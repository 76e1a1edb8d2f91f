"""Leak detection: the Theil-Sen growth of RSS and GPU memory, and tracemalloc diffs."""

from __future__ import annotations

import inspect
import random
import time
import tracemalloc
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from scipy import stats
from typer.testing import CliRunner

from inferwatch import ConfigError, Monitor, Registry
from inferwatch.analyze.leak import (
    AllocationTracker,
    GrowthWindow,
    MemoryGrowthCollector,
    allocation_app,
    theil_sen,
)
from inferwatch.cli import app as cli
from inferwatch.exposition import render
from inferwatch.testing import FakeClock, FakeGPU, FakeNVML
from tests.support import free_port, serve_asgi

MiB = 2**20


@pytest.mark.parametrize("n", [5, 40, 150])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_theil_sen_matches_scipy(n: int, seed: int) -> None:
    rng = random.Random(seed)
    times = sorted(rng.uniform(0, 600) for _ in range(n))
    values = [3.0 * t + rng.gauss(0, 50) + (500 if rng.random() < 0.1 else 0) for t in times]
    slope, intercept = theil_sen(times, values)
    expected = stats.theilslopes(values, times, method="joint")
    assert slope == pytest.approx(expected.slope, rel=1e-9)
    assert intercept == pytest.approx(expected.intercept, rel=1e-9, abs=1e-6)


def test_theil_sen_ignores_repeated_times_and_needs_two_distinct() -> None:
    assert theil_sen([0, 0, 1, 2], [0, 5, 2, 4])[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="distinct"):
        theil_sen([1, 1], [1, 2])


def test_a_window_forgets_old_samples_and_waits_for_enough() -> None:
    window = GrowthWindow(60, min_samples=3, min_span_s=30)
    window.add(0, 0)
    window.add(10, 10)
    assert window.slope() is None  # two samples
    window.add(20, 20)
    assert window.slope() is None  # spans 20 s < 30 s
    window.add(40, 40)
    assert window.slope() == pytest.approx(1.0)
    window.add(100, 40)  # drops the samples before t=40
    assert len(window) == 2


def drive(collector: MemoryGrowthCollector, clock: FakeClock, samples: int, period: float) -> None:
    for _ in range(samples):
        collector.sample()
        clock.advance(period)


def test_a_growing_list_is_found_as_a_leak() -> None:
    """Real RSS of this process while a list grows 2 MiB per sample (5 s of fake time)."""
    clock = FakeClock()
    collector = MemoryGrowthCollector(period_s=5, window_s=150, gpu=False, clock=clock)
    hoard: list[bytearray] = []
    for _ in range(30):
        hoard.append(bytearray(b"\x01") * (2 * MiB))  # touched pages: they count in RSS
        collector.sample()
        clock.advance(5)
    growth = collector.process_growth()
    assert growth is not None
    assert growth == pytest.approx(2 * MiB / 5, rel=0.25)
    del hoard


def test_a_flat_noisy_rss_with_spikes_stays_quiet() -> None:
    clock = FakeClock()
    rng = random.Random(5)

    def rss() -> float:
        spike = 300 * MiB if rng.random() < 0.1 else 0  # a GC or allocator burst
        return 800 * MiB + rng.uniform(-20, 20) * MiB + spike

    collector = MemoryGrowthCollector(period_s=5, window_s=600, rss=rss, gpu=False, clock=clock)
    drive(collector, clock, 240, 5)  # 20 minutes
    growth = collector.process_growth()
    assert growth is not None
    # The example rule fires above 64 KiB/s; noise of +-20 MiB stays far below it.
    assert abs(growth) < 8 * 1024


def test_a_steady_leak_under_noise_is_measured() -> None:
    clock = FakeClock()
    rng = random.Random(9)
    start = clock()

    def rss() -> float:
        return 800 * MiB + 100 * 1024 * (clock() - start) + rng.uniform(-20, 20) * MiB

    collector = MemoryGrowthCollector(period_s=5, window_s=600, rss=rss, gpu=False, clock=clock)
    drive(collector, clock, 240, 5)
    growth = collector.process_growth()
    assert growth == pytest.approx(100 * 1024, rel=0.1)


def test_gpu_memory_growth_is_exported_per_gpu() -> None:
    clock = FakeClock()
    leaking, flat = FakeGPU(memory_used=10 * 2**30), FakeGPU(memory_used=20 * 2**30)
    fake = FakeNVML([leaking, flat])
    collector = MemoryGrowthCollector(
        period_s=5, window_s=300, rss=lambda: 1.0, nvml=fake, clock=clock
    )
    for _ in range(70):
        collector.sample()
        leaking.memory_used += 5 * MiB  # 1 MiB/s
        clock.advance(5)
    growth = collector.gpu_growth()
    assert growth["0"] == pytest.approx(MiB)
    assert growth["1"] == 0
    collector.stop()
    assert not fake.initialized


def test_rates_appear_on_metrics_only_once_the_window_is_half_full() -> None:
    clock = FakeClock()
    level = [100 * MiB]
    fake = FakeNVML([FakeGPU()])
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    collector = MemoryGrowthCollector(
        period_s=10, window_s=120, rss=lambda: level[0], nvml=fake, clock=clock
    )
    registry.register(collector)

    def scrape() -> dict[str, float]:
        body, _ = render(registry)
        return {
            sample.name + str(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if "growth" in sample.name
        }

    for _ in range(6):  # samples at 0..50 s: six samples spanning 50 s < 60 s
        assert scrape() == {}
        level[0] += 1000
        clock.advance(10)
    scrape()  # the seventh sample, at 60 s
    assert scrape() == {  # no new sample: a period has not passed
        "process_memory_growth_bytes_per_second[]": 100.0,
        "gpu_memory_growth_bytes_per_second[('gpu', '0')]": 0.0,
    }
    collector.stop()


def test_the_monitor_registers_a_sampling_collector() -> None:
    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("digits", registry=registry)
    collector = monitor.memory_growth(period_s=0.01, window_s=1.0, gpu=False)
    try:
        deadline = time.monotonic() + 10
        while collector.process_growth() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        names = {family.name for family in registry.snapshot()}
        assert "process_memory_growth_bytes_per_second" in names
    finally:
        collector.stop()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"period_s": 0}, "period_s"),
        ({"window_s": float("nan")}, "window_s"),
        ({"period_s": 10, "window_s": 15}, "window_s"),
        ({"min_samples": 1}, "min_samples"),
    ],
)
def test_bad_windows_are_rejected_naming_the_field(options: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        MemoryGrowthCollector(gpu=False, **options)  # type: ignore[arg-type]
    assert info.value.field == field


# -- tracemalloc -----------------------------------------------------------------------


@pytest.fixture
def tracker() -> Iterator[AllocationTracker]:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing in this process")
    tracker = AllocationTracker()
    yield tracker
    tracker.stop()


def leak_into(store: list[bytes], count: int) -> int:
    """Allocate ``count`` distinct 1 KiB objects; returns the line that allocates them."""
    for i in range(count):
        store.append(i.to_bytes(4, "little") * 256)
    return inspect.getsourcelines(leak_into)[1] + 3


def test_a_diff_names_the_allocation_site_that_grew(tracker: AllocationTracker) -> None:
    store: list[bytes] = []
    tracker.start()
    line = leak_into(store, 3000)
    [top, *_] = tracker.diff(top=5)
    assert (top.file, top.line) == (__file__, line)
    assert top.size_diff_bytes >= 3000 * 1024
    assert top.count_diff >= 3000
    assert top.traceback == (f"{__file__}:{line}",)
    # Nothing new since: the next diff does not list the site again.
    assert all((site.file, site.line) != (__file__, line) for site in tracker.diff(top=5))


def test_the_first_diff_starts_tracing_and_stop_ends_it(tracker: AllocationTracker) -> None:
    assert tracker.diff() == []
    assert tracker.tracing
    tracker.stop()
    assert not tracemalloc.is_tracing()


@pytest.fixture
def service() -> Iterator[str]:
    """A FastAPI service with the allocation app mounted, under a real uvicorn."""
    api = FastAPI()
    hoard: list[bytes] = []

    @api.post("/grow")
    def grow() -> dict[str, int]:
        leak_into(hoard, 2000)
        return {"size": len(hoard)}

    api.mount("/debug/leaks", allocation_app())
    try:
        with serve_asgi(api) as url:
            yield url
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()


def test_the_cli_lists_a_growing_site_of_a_running_service(service: str) -> None:
    if tracemalloc.is_tracing():
        pytest.skip("tracemalloc is already tracing in this process")
    url = f"{service}/debug/leaks"
    runner = CliRunner()
    first = runner.invoke(cli, ["leaks", "snapshot", "--url", url])
    assert first.exit_code == 0, first.output
    assert "tracing started" in first.output
    with httpx.Client(base_url=service, timeout=10, follow_redirects=True) as client:
        assert client.post("/grow").status_code == 200
        status = client.get("/debug/leaks").json()
        assert status["tracing"] is True
        assert client.get("/debug/leaks/snapshot").status_code == 405
    second = runner.invoke(cli, ["leaks", "snapshot", "--url", url, "--top", "3", "--json"])
    assert second.exit_code == 0, second.output
    body = httpx.Response(200, content=second.output).json()
    line = inspect.getsourcelines(leak_into)[1] + 3
    assert (body["sites"][0]["file"], body["sites"][0]["line"]) == (__file__, line)
    assert body["sites"][0]["size_diff_bytes"] >= 2000 * 1024
    table = runner.invoke(cli, ["leaks", "snapshot", "--url", url])
    assert table.exit_code == 0, table.output
    stopped = runner.invoke(cli, ["leaks", "stop", "--url", url])
    assert stopped.exit_code == 0, stopped.output
    assert not tracemalloc.is_tracing()


def test_the_cli_reports_a_bad_answer(service: str) -> None:
    result = CliRunner().invoke(
        cli, ["leaks", "snapshot", "--url", f"{service}/debug/leaks", "--key-type", "bogus"]
    )
    assert result.exit_code == 1
    assert "key_type" in result.output
    unreachable = CliRunner().invoke(
        cli, ["leaks", "snapshot", "--url", f"http://127.0.0.1:{free_port()}/x"]
    )
    assert unreachable.exit_code == 1
    assert "error" in unreachable.output

"""The scrape manager against real loopback servers, a fake clock, and a real registry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from inferwatch import ConfigError, Registry
from inferwatch.exposition.convert import histogram_buckets
from inferwatch.scrape import ScrapeManager, parse_scrape_configs
from inferwatch.testing import FakeClock
from inferwatch.tsdb.labels import Matcher, is_stale
from tests.scrape.support import (
    ExpositionServer,
    RecordingAppender,
    exposed_sample_count,
    fixture_text,
)

Serve = Callable[..., ExpositionServer]


def job(name: str, *servers: ExpositionServer, **fields: Any) -> dict[str, Any]:
    return {
        "job_name": name,
        "static_configs": [{"targets": [s.address for s in servers]}],
        **fields,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def registry() -> Registry:
    return Registry(collectors=[], include_default_registry=False, multiprocess=False)


@pytest.fixture
def managers() -> Iterator[Callable[..., ScrapeManager]]:
    made: list[ScrapeManager] = []

    def make(*args: Any, **kwargs: Any) -> ScrapeManager:
        made.append(ScrapeManager(*args, **kwargs))
        return made[-1]

    yield make
    for manager in made:
        manager.stop()


def test_one_round_scrapes_good_targets_while_bad_ones_fail_alone(
    serve: Serve,
    appender: RecordingAppender,
    clock: FakeClock,
    managers: Callable[..., ScrapeManager],
) -> None:
    triton = serve(body=fixture_text("triton.txt"))
    vllm = serve(body=fixture_text("vllm.txt"))
    malformed = serve(body="nv_gpu_utilization{gpu_uuid=\n")
    hanging = serve(body="x 1\n", delay=10.0)
    broken = serve(status=500, body="Internal Server Error")
    configs = parse_scrape_configs(
        [
            job("triton", triton, scrape_interval="15s"),
            job("vllm", vllm, metrics_path="/metrics"),
            job("flaky", malformed, hanging, broken, scrape_timeout="300ms"),
        ]
    )
    manager = managers(appender, configs, clock=clock)

    started = time.monotonic()
    results = manager.scrape_all_now()
    elapsed = time.monotonic() - started

    assert elapsed < 2.0  # the hanging target costs its timeout, in parallel with the rest
    assert [r.health for r in results] == ["up", "up", "down", "down", "down"]
    ups = {
        s.address: appender.value("up", instance=s.address)
        for s in (triton, vllm, malformed, hanging, broken)
    }
    assert ups == {
        triton.address: 1,
        vllm.address: 1,
        malformed.address: 0,
        hanging.address: 0,
        broken.address: 0,
    }
    ts = int(clock() * 1000)
    assert all(t == ts for t, _ in appender.calls)
    for server, name in ((triton, "triton.txt"), (vllm, "vllm.txt")):
        stored = appender.select(None, instance=server.address)
        assert len(stored) == exposed_sample_count(fixture_text(name)) + 5
    for server in (malformed, hanging, broken):
        assert len(appender.select(None, instance=server.address)) == 5  # synthetic only


def test_targets_report_health_errors_and_times(
    serve: Serve,
    appender: RecordingAppender,
    clock: FakeClock,
    managers: Callable[..., ScrapeManager],
) -> None:
    good = serve(body="x 1\n")
    bad = serve(status=500)
    configs = parse_scrape_configs([job("a", good), job("b", bad, params={"m": ["1"]})])
    manager = managers(appender, configs, clock=clock)
    assert [t.health for t in manager.targets()] == ["unknown", "unknown"]

    manager.scrape_all_now()
    a, b = manager.targets()
    assert (a.job, a.url, a.health, a.last_error) == (
        "a",
        f"http://{good.address}/metrics",
        "up",
        "",
    )
    assert (b.job, b.url, b.health) == ("b", f"http://{bad.address}/metrics?m=1", "down")
    assert b.last_error == "server returned HTTP status 500 Internal Server Error"
    assert a.last_scrape_ms == b.last_scrape_ms == int(clock() * 1000)
    assert a.last_duration_s is not None and a.last_duration_s < 1
    assert (a.scrape_interval_s, a.scrape_timeout_s) == (60.0, 10.0)
    assert dict(a.labels) == {"job": "a", "instance": good.address}


def test_the_fake_clock_drives_timestamps_and_staleness(
    serve: Serve,
    appender: RecordingAppender,
    clock: FakeClock,
    managers: Callable[..., ScrapeManager],
) -> None:
    server = serve(body='requests{model="a"} 1\nrequests{model="b"} 1\n')
    manager = managers(appender, parse_scrape_configs([job("j", server)]), clock=clock)
    manager.scrape_all_now()
    clock.advance(15)
    server.response.body = 'requests{model="a"} 2\n'
    manager.scrape_all_now()
    [points] = appender.select("requests", model="b").values()
    assert points[0] == (1_700_000_000_000, 1.0)
    assert points[1][0] == 1_700_000_015_000 and is_stale(points[1][1])


def test_the_registry_is_collected_straight_into_the_appender(
    appender: RecordingAppender,
    clock: FakeClock,
    registry: Registry,
    managers: Callable[..., ScrapeManager],
) -> None:
    predictions = registry.counter("predictions_total", "Predictions.", ["model"])
    predictions.labels("digits").inc(3)
    registry.gauge("queue_depth", "Queued requests.").set(4)
    latency = registry.histogram("score_seconds", "Scoring time.", buckets=[0.1, 1.0])
    for value in (0.05, 0.5, 2.0):
        latency.observe(value)
    manager = managers(appender, [], clock=clock, registry=registry)

    [result] = manager.scrape_all_now()

    assert result.health == "up"
    local = {"job": "inferwatch", "instance": "local"}
    assert appender.value("predictions_total", model="digits", **local) == 3
    assert appender.value("queue_depth", **local) == 4
    [snapshot] = [f for f in registry.families() if f.name == "score_seconds"]
    [histogram] = snapshot.samples.values()
    for le, count in histogram_buckets(histogram):  # type: ignore[arg-type]
        assert appender.value("score_seconds_bucket", le=le, **local) == count
    assert appender.value("score_seconds_count", **local) == 3
    assert appender.value("score_seconds_sum", **local) == pytest.approx(2.55)
    assert appender.value("up", **local) == 1
    [status] = manager.targets()
    assert (status.job, status.url, status.health) == ("inferwatch", "inprocess://registry", "up")


def test_a_failing_registry_reports_up_0(
    appender: RecordingAppender, clock: FakeClock, managers: Callable[..., ScrapeManager]
) -> None:
    class Broken:
        def collect(self) -> Iterator[Any]:
            raise RuntimeError("collector exploded")

    manager = managers(appender, [], clock=clock, registry=Broken())
    [result] = manager.scrape_all_now()
    assert result.health == "down"
    assert "collector exploded" in result.error
    assert appender.value("up", job="inferwatch") == 0


def test_background_scraping_keeps_every_schedule_despite_a_hanging_target(
    serve: Serve,
    appender: RecordingAppender,
    registry: Registry,
    managers: Callable[..., ScrapeManager],
) -> None:
    fast = serve(body="x 1\n")
    hanging = serve(body="x 1\n", delay=10.0)
    configs = parse_scrape_configs(
        [
            job("fast", fast, scrape_interval="100ms"),
            job("hanging", hanging, scrape_interval="400ms", scrape_timeout="300ms"),
        ]
    )
    manager = managers(appender, configs, registry=registry, registry_interval=0.1)
    manager.start()
    time.sleep(1.0)
    started = time.monotonic()
    manager.stop()
    assert time.monotonic() - started < 1.0  # a scrape in flight ends within its timeout

    assert len(fast.requests) >= 4
    [local_up] = appender.select("up", job="inferwatch").values()
    assert len(local_up) >= 4
    [hanging_up] = appender.select("up", job="hanging").values()
    assert {v for _, v in hanging_up} == {0.0}
    statuses = {s.job: s.health for s in manager.targets()}
    assert statuses == {"inferwatch": "up", "fast": "up", "hanging": "down"}


def test_on_scrape_is_told_of_every_stored_scrape_and_its_errors_are_contained(
    serve: Serve, appender: RecordingAppender, managers: Callable[..., ScrapeManager]
) -> None:
    server = serve(body="x 1\n")
    configs = parse_scrape_configs([job("j", server, scrape_interval="50ms")])
    seen: list[tuple[str, str, int]] = []

    def on_scrape(target: Any, result: Any) -> None:
        # The samples are in the store by the time the hook runs.
        seen.append((target.job, result.health, len(appender.select("x"))))
        raise RuntimeError("a broken hook must not stop scraping")

    manager = managers(appender, configs, on_scrape=on_scrape)
    manager.start()
    deadline = time.monotonic() + 5
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    manager.stop()
    assert len(seen) >= 3
    assert all(item == ("j", "up", 1) for item in seen)


def test_start_twice_is_an_error_and_stop_twice_is_not(
    appender: RecordingAppender, managers: Callable[..., ScrapeManager]
) -> None:
    manager = managers(appender, [])
    manager.start()
    with pytest.raises(RuntimeError):
        manager.start()
    manager.stop()
    manager.stop()


def test_the_manager_is_a_context_manager(serve: Serve, appender: RecordingAppender) -> None:
    server = serve(body="x 1\n")
    configs = parse_scrape_configs([job("j", server, scrape_interval="50ms")])
    with ScrapeManager(appender, configs):
        deadline = time.monotonic() + 5
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.01)
    assert server.requests


def test_registry_interval_must_be_positive(appender: RecordingAppender) -> None:
    with pytest.raises(ConfigError, match="registry_interval"):
        ScrapeManager(appender, [], registry_interval=0)


def test_a_round_lands_in_the_real_store(
    serve: Serve, registry: Registry, tmp_path: Path, managers: Callable[..., ScrapeManager]
) -> None:
    from inferwatch.tsdb.store import Store

    registry.counter("predictions_total", "Predictions.", ["model"]).labels("digits").inc(2)
    triton = serve(body=fixture_text("triton.txt"))
    broken = serve(status=500)
    clock = FakeClock(time.time())
    with Store(tmp_path / "inferwatch.db", clock=clock) as store:
        configs = parse_scrape_configs([job("triton", triton), job("broken", broken)])
        manager = managers(store, configs, clock=clock, registry=registry)
        manager.scrape_all_now()
        clock.advance(15)
        triton.response.body = "nv_cpu_utilization 0.5\n"
        manager.scrape_all_now()

        t0 = int((clock() - 15) * 1000)
        t1 = t0 + 15_000

        def select(*matchers: Matcher) -> dict[str, list[tuple[int, float]]]:
            """Points by the series' labels (without the name), written ``k=v,k=v``."""
            return {
                ",".join(f"{k}={v}" for k, v in s.labels if k != "__name__"): list(
                    zip(s.timestamps.tolist(), s.values.tolist(), strict=True)
                )
                for s in store.select(list(matchers), t0, t1)
            }

        up = select(Matcher("__name__", "=", "up"))
        assert up == {
            "instance=local,job=inferwatch": [(t0, 1.0), (t1, 1.0)],
            f"instance={triton.address},job=triton": [(t0, 1.0), (t1, 1.0)],
            f"instance={broken.address},job=broken": [(t0, 0.0), (t1, 0.0)],
        }
        [cpu] = select(Matcher("__name__", "=", "nv_cpu_utilization")).values()
        assert cpu == [(t0, 0.23), (t1, 0.5)]
        gpus = select(Matcher("__name__", "=", "nv_gpu_utilization")).values()
        assert len(gpus) == 2
        assert all(len(points) == 2 and is_stale(points[1][1]) for points in gpus)
        [predictions] = select(
            Matcher("__name__", "=", "predictions_total"), Matcher("job", "=", "inferwatch")
        ).values()
        assert predictions == [(t0, 2.0), (t1, 2.0)]

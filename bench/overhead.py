"""Per-call overhead of ``@monitor.track`` against prometheus_client and OpenTelemetry.

Each contender wraps the same no-op function and records latency, count, outcome
and in-flight. The figure is the time per call minus the time of the bare call,
best of several repeats. Peers, in the same run:

- prometheus_client: prebound ``Histogram.observe`` + ``Counter.inc`` (the usual
  hand-written instrumentation), and the same plus an in-flight ``Gauge`` inc/dec;
- OpenTelemetry SDK: ``Histogram.record`` + ``Counter.add`` + ``UpDownCounter.add``
  (in-flight up and down), and ``Histogram.record`` alone.

inferwatch defers aggregation to collection time. Its figure is the sum of the hot
path (what the request waits for) and the fold at collection per recorded call (CPU
spent later, at scrape time); both parts are printed too.

Usage: python bench/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def per_call_ns(fn: Callable[[int], Any], n: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def noop(x: int) -> int:
    return x


def make_inferwatch() -> tuple[Callable[[int], Any], Callable[[], None]]:
    from inferwatch import Monitor, Registry

    registry = Registry(collectors=[], include_default_registry=False, multiprocess=False)
    monitor = Monitor("bench", "1", registry=registry)
    tracked = monitor.track(noop)
    return tracked, lambda: registry.snapshot() and None


def make_prometheus(with_gauge: bool) -> Callable[[int], Any]:
    import prometheus_client as pc

    reg = pc.CollectorRegistry()
    hist = pc.Histogram("lat_seconds", "l", ["model"], registry=reg).labels("bench")
    count = pc.Counter("req_total", "c", ["model", "outcome"], registry=reg).labels(
        "bench", "success"
    )
    gauge = pc.Gauge("inflight", "g", ["model"], registry=reg).labels("bench")
    perf = time.perf_counter

    if with_gauge:

        def wrapped_g(x: int) -> int:
            gauge.inc()
            t0 = perf()
            try:
                r = noop(x)
            finally:
                gauge.dec()
            hist.observe(perf() - t0)
            count.inc()
            return r

        return wrapped_g

    def wrapped(x: int) -> int:
        t0 = perf()
        r = noop(x)
        hist.observe(perf() - t0)
        count.inc()
        return r

    return wrapped


def make_otel_record_only() -> Callable[[int], Any] | None:
    """OpenTelemetry doing only the latency histogram (the usual single-figure peer)."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        return None
    hist = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    latency = hist.create_histogram("latency", unit="s")
    attrs = {"model": "bench"}
    perf = time.perf_counter

    def wrapped(x: int) -> int:
        t0 = perf()
        r = noop(x)
        latency.record(perf() - t0, attrs)
        return r

    return wrapped


def make_otel() -> Callable[[int], Any] | None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    except ImportError:
        return None
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    meter = provider.get_meter("bench")
    hist = meter.create_histogram("latency", unit="s")
    count = meter.create_counter("requests")
    inflight = meter.create_up_down_counter("inflight")
    attrs = {"model": "bench"}
    ok_attrs = {"model": "bench", "outcome": "success"}
    perf = time.perf_counter

    def wrapped(x: int) -> int:
        inflight.add(1, attrs)
        t0 = perf()
        try:
            r = noop(x)
        finally:
            inflight.add(-1, attrs)
        hist.record(perf() - t0, attrs)
        count.add(1, ok_attrs)
        return r

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run")
    args = parser.parse_args()
    # Each repeat is followed by a collection (as a scrape would do), outside the timer.
    n = 50_000
    repeats = 5 if args.quick else 40

    ours, fold = make_inferwatch()
    contenders: dict[str, Callable[[int], Any]] = {
        "inferwatch": ours,
        "prometheus_client": make_prometheus(with_gauge=False),
        "prometheus_client_with_inflight": make_prometheus(with_gauge=True),
    }
    otel = make_otel()
    if otel is not None:
        contenders["opentelemetry_sdk"] = otel
    otel_record = make_otel_record_only()
    if otel_record is not None:
        contenders["opentelemetry_sdk_histogram_only"] = otel_record

    bare = per_call_ns(noop, n, repeats)
    results: dict[str, Any] = {"calls_per_repeat": n, "bare_call_ns": round(bare, 1)}
    for name, fn in contenders.items():
        if fn is ours:
            hot = float("inf")
            deferred = float("inf")
            for _ in range(repeats):
                hot = min(hot, per_call_ns(fn, n, 1))
                t0 = time.perf_counter_ns()
                fold()
                deferred = min(deferred, (time.perf_counter_ns() - t0) / n)
            results["inferwatch_hot_path_ns"] = round(hot - bare, 1)
            results["inferwatch_fold_ns_per_call"] = round(deferred, 1)
            overhead = hot - bare + deferred
        else:
            overhead = per_call_ns(fn, n, repeats) - bare
        results[f"{name}_overhead_ns"] = round(overhead, 1)
        print(f"{name:34s} {overhead:8.1f} ns per call", file=sys.stderr)

    ratio = results["inferwatch_overhead_ns"] / results["prometheus_client_overhead_ns"]
    results["ratio_vs_prometheus_client"] = round(ratio, 3)
    results["goal_ratio"] = 0.35
    print(json.dumps(results))


if __name__ == "__main__":
    main()

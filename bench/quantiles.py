"""Quantile accuracy of inferwatch's log sketch against prometheus_client's default buckets.

Three latency distributions, N samples each from a fixed seed, as integer nanoseconds
(what ``perf_counter_ns`` gives the SDK):

- ``lognormal``: median 50 ms, sigma 0.6;
- ``bimodal``: 90% log-normal around 20 ms and 10% log-normal around 400 ms (sigma 0.3);
- ``pareto``: Pareto with scale 10 ms and shape 1.5 (infinite variance).

The exact quantile is the one ``histogram_quantile`` estimates: with the samples sorted,
the smallest one whose rank (1-based) is at least ``q * N``, i.e. ``sorted[ceil(q*N) - 1]``
(numpy's ``method="inverted_cdf"``). Every contender is compared with it, read the way
a user reads it:

- ``inferwatch_promql``: the sketch's exported ``(le, cumulative count)`` buckets (with
  each ``le`` turned into the text a scrape carries and back), through Prometheus's
  ``histogram_quantile`` (re-implemented below from ``promql/quantile.go``);
- ``inferwatch_direct``: ``QuantileSketch.quantile(q)``;
- ``prometheus_client_default``: a ``prometheus_client.Histogram`` with its default
  buckets, fed every sample through ``observe``, through the same ``histogram_quantile``.

Errors are signed relative errors, ``(estimate - exact) / exact``, as fractions; the
"max" figures are the largest absolute value over all distributions and quantiles.
The number of exported ``le`` series per histogram is reported too: accuracy is paid
for in series.

Usage: python bench/quantiles.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

QUANTILES = (0.5, 0.9, 0.99, 0.999)
SEED = 20240611


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus's ``histogram_quantile`` for a classic histogram.

    ``buckets`` are ``(le, cumulative count)`` pairs. Follows ``bucketQuantile`` in
    ``promql/quantile.go``: sort by bound, require a ``+Inf`` bucket, merge equal
    bounds, force monotonic counts, then interpolate linearly inside the first bucket
    whose cumulative count reaches ``q * total``. The lower edge of the first bucket is
    0 (unless its bound is <= 0); a rank in the ``+Inf`` bucket gives the bound of the
    second-highest bucket.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets, key=lambda b: b[0])
    if not ordered or not math.isinf(ordered[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for le, count in ordered:
        if merged and merged[-1][0] == le:
            merged[-1][1] += count
        else:
            merged.append([le, count])
    for i in range(1, len(merged)):
        merged[i][1] = max(merged[i][1], merged[i - 1][1])
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    # sort.Search over all but the +Inf bucket: the first bucket with count >= rank.
    b = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            b = i
            break
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    bucket_start = 0.0
    bucket_end = merged[b][0]
    count = merged[b][1]
    if b > 0:
        bucket_start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


def exact_quantile(sorted_values: np.ndarray, q: float) -> float:
    """``sorted[ceil(q*N) - 1]``: the sample ``histogram_quantile`` aims at."""
    n = len(sorted_values)
    # round() keeps q*N = 990000.0000000001 from moving to the next sample.
    k = max(1, math.ceil(round(q * n, 6)))
    return float(sorted_values[k - 1])


def distributions(n: int) -> dict[str, np.ndarray]:
    """Latency samples in integer nanoseconds, one array per distribution."""
    rng = np.random.default_rng(SEED)
    lognormal = rng.lognormal(math.log(0.050), 0.6, n)
    slow = rng.random(n) < 0.10
    bimodal = np.where(
        slow, rng.lognormal(math.log(0.400), 0.3, n), rng.lognormal(math.log(0.020), 0.3, n)
    )
    pareto = 0.010 * (1.0 + rng.pareto(1.5, n))
    out: dict[str, np.ndarray] = {}
    for name, seconds in (("lognormal", lognormal), ("bimodal", bimodal), ("pareto", pareto)):
        out[name] = np.rint(seconds * 1e9).astype(np.int64)
    return out


def inferwatch_buckets(samples_ns: np.ndarray) -> tuple[Callable[[float], float], list[Any]]:
    """The sketch's direct reader and its buckets as a scrape carries them."""
    from prometheus_client.utils import floatToGoString

    from inferwatch.sdk.sketch import QuantileSketch

    sketch = QuantileSketch()
    sketch.add_ns(samples_ns.tolist())
    scraped = [(float(floatToGoString(le)), c) for le, c in sketch.cumulative_buckets()]
    return sketch.quantile, scraped


def prometheus_client_buckets(samples_ns: np.ndarray) -> list[tuple[float, float]]:
    """Buckets of a default-bucket ``prometheus_client.Histogram`` fed every sample."""
    import prometheus_client as pc

    registry = pc.CollectorRegistry()
    hist = pc.Histogram("latency_seconds", "latency", registry=registry)
    observe = hist.observe
    for value in (samples_ns * 1e-9).tolist():
        observe(value)
    out: list[tuple[float, float]] = []
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name.endswith("_bucket"):
                out.append((float(sample.labels["le"]), sample.value))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 samples, not 1,000,000")
    args = parser.parse_args()
    n = 100_000 if args.quick else 1_000_000

    contenders = ("inferwatch_promql", "inferwatch_direct", "prometheus_client_default")
    results: dict[str, Any] = {"samples": n, "seed": SEED, "quantiles": list(QUANTILES)}
    errors: dict[str, dict[str, dict[str, float]]] = {}
    series: dict[str, dict[str, int]] = {}
    worst = dict.fromkeys(contenders, 0.0)

    print(
        f"{'distribution':10s} {'q':>6s} {'exact (s)':>11s} "
        + " ".join(f"{c:>26s}" for c in contenders),
        file=sys.stderr,
    )
    for dist, samples in distributions(n).items():
        exact_sorted = np.sort(samples) * 1e-9
        direct, ours = inferwatch_buckets(samples)
        default = prometheus_client_buckets(samples)
        series[dist] = {"inferwatch": len(ours), "prometheus_client_default": len(default)}
        readers: dict[str, Callable[[float], float]] = {
            "inferwatch_promql": partial(histogram_quantile, buckets=ours),
            "inferwatch_direct": direct,
            "prometheus_client_default": partial(histogram_quantile, buckets=default),
        }
        errors[dist] = {}
        for q in QUANTILES:
            exact = exact_quantile(exact_sorted, q)
            row: dict[str, float] = {}
            for name in contenders:
                rel = (readers[name](q) - exact) / exact
                row[name] = round(rel, 6)
                worst[name] = max(worst[name], abs(rel))
            errors[dist][f"p{q * 100:g}"] = row
            cells = " ".join(f"{row[c]:+26.4%}" for c in contenders)
            print(f"{dist:10s} {q:6g} {exact:11.6f} {cells}", file=sys.stderr)
        print(
            f"{dist:10s} le series: inferwatch {len(ours)}, default {len(default)}",
            file=sys.stderr,
        )

    for name in contenders:
        print(f"max |relative error| {name:26s} {worst[name]:8.4%}", file=sys.stderr)
    results["relative_error_signed"] = errors
    results["max_abs_rel_error"] = {name: round(v, 6) for name, v in worst.items()}
    results["le_series"] = series
    results["goal_max_rel_error"] = 0.01
    print(json.dumps(results))


if __name__ == "__main__":
    main()

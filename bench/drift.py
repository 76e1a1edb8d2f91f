"""Drift statistics for N rows x K numeric features: inferwatch beside Evidently's DataDriftPreset.

The same data for both, generated from a fixed seed in each process (pandas DataFrames,
one contiguous float64 column per feature): a reference of N rows and a current batch of
N rows, K features cycling through four distributions (normal, log-normal, uniform with
negatives, small integers with ties); every tenth feature of the current batch is
shifted by 0.1 standard deviations (rounded for the integer ones), the rest are drawn from
the reference's distribution.

- ``inferwatch``: build the reference profile from the reference DataFrame
  (``ReferenceProfile.from_data``), ingest the current DataFrame into a ``DriftDetector``
  (``observe_batch``), compute every statistic (``statistics()``: KS statistic and
  p-value, PSI per feature).
- ``evidently``: ``Report([DataDriftPreset()]).run(current, reference)`` (Evidently
  0.7's defaults: normed Wasserstein distance per numeric column above 1000 rows).

Each contender runs in its own subprocess, so peak memory is separate: the process
generates the data, imports its library, records ``ru_maxrss`` (the baseline), runs, and
reports ``ru_maxrss`` minus that baseline ("peak_rss_delta_mib": the memory the
computation itself added at its peak; imports, including the scipy.stats import that
inferwatch does lazily, happen before the baseline for both). Wall time is the computation only.
``inferwatch`` also reports its sketches' own size (``sketch_bytes``, fixed by the
number of bins, not the rows) and the hot-path cost of ``observe`` for one row of 10
features (``observe_us_per_row``, buffering and folding included).

If Evidently would take too long on the full data, ``--evidently-rows`` runs it on the
first M rows of both frames; the JSON then says so (``evidently_rows``), and no figure
is extrapolated.

Usage: python bench/drift.py [--quick] [--rows N] [--features K] [--evidently-rows M]
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

SEED = 20240611
SHIFT_EVERY = 10


def make_frames(rows: int, features: int) -> tuple[Any, Any]:
    """Reference and current DataFrames (columns ``f0``..``f{K-1}``)."""
    import pandas as pd

    rng = np.random.default_rng(SEED)
    ref = np.empty((features, rows))
    cur = np.empty((features, rows))
    for j in range(features):
        shift = 0.1 if j % SHIFT_EVERY == 0 else 0.0
        kind = j % 4
        for out, delta in ((ref[j], 0.0), (cur[j], shift)):
            if kind == 0:
                out[:] = rng.standard_normal(rows) + delta
            elif kind == 1:
                out[:] = rng.lognormal(0.0, 0.5, rows) * (1 + delta)
            elif kind == 2:
                out[:] = rng.uniform(-1.0, 1.0, rows) + delta * 0.577
            else:
                out[:] = rng.poisson(3.0, rows) + round(delta * 1.73 * 10)
    names = [f"f{j}" for j in range(features)]
    # DataFrame over the (features, rows) arrays' transpose: no copy, contiguous columns.
    return pd.DataFrame(ref.T, columns=names, copy=False), pd.DataFrame(
        cur.T, columns=names, copy=False
    )


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_inferwatch(rows: int, features: int) -> dict[str, Any]:
    ref, cur = make_frames(rows, features)
    import scipy.stats  # noqa: F401  (imported lazily on first use; a one-time cost)

    from inferwatch.analyze.drift import DriftDetector
    from inferwatch.analyze.profile import ReferenceProfile
    from inferwatch.testing import FakeClock

    base = _maxrss_mib()
    t0 = time.perf_counter()
    profile = ReferenceProfile.from_data(ref)
    t1 = time.perf_counter()
    detector = DriftDetector("bench", "1", reference=profile, clock=FakeClock())
    detector.observe_batch(cur)
    t2 = time.perf_counter()
    stats = detector.statistics()
    t3 = time.perf_counter()
    peak = _maxrss_mib() - base
    drifted = sorted(name for name, s in stats.items() if s.drifted)
    psi_drifted = sorted(name for name, s in stats.items() if (s.psi or 0.0) >= 0.1)
    sketch_bytes = detector.sketch_nbytes

    # Hot path: one row of 10 features at a time.
    names = [f"f{j}" for j in range(10)]
    hot = DriftDetector("bench", "1", reference=ReferenceProfile.from_data(ref[names]))
    values = cur[names].to_numpy()[:100_000].tolist()
    batch = [dict(zip(names, v, strict=True)) for v in values]
    h0 = time.perf_counter()
    for row in batch:
        hot.observe(row)
    hot.fold()
    observe_us = (time.perf_counter() - h0) / len(batch) * 1e6
    return {
        "seconds": t3 - t0,
        "reference_seconds": t1 - t0,
        "ingest_seconds": t2 - t1,
        "statistics_seconds": t3 - t2,
        "peak_rss_delta_mib": peak,
        "sketch_bytes": sketch_bytes,
        "drifted": len(drifted),
        "drifted_psi_ge_0_1": len(psi_drifted),
        "observe_us_per_row": observe_us,
        "rows": rows,
    }


def run_evidently(rows: int, features: int, evidently_rows: int) -> dict[str, Any]:
    ref, cur = make_frames(rows, features)
    if evidently_rows < rows:
        ref = ref.iloc[:evidently_rows]
        cur = cur.iloc[:evidently_rows]
    from evidently import Report
    from evidently.presets import DataDriftPreset

    base = _maxrss_mib()
    t0 = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur, ref)
    result = snapshot.dict()
    seconds = time.perf_counter() - t0
    peak = _maxrss_mib() - base
    count = result["metrics"][0]["value"]["count"]
    return {
        "seconds": seconds,
        "peak_rss_delta_mib": peak,
        "drifted": int(count),
        "rows": len(ref),
    }


def _worker(args: argparse.Namespace) -> None:
    if args.worker == "inferwatch":
        out = run_inferwatch(args.rows, args.features)
    else:
        out = run_evidently(args.rows, args.features, args.evidently_rows)
    print(json.dumps(out))


def _spawn(which: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        which,
        "--rows",
        str(args.rows),
        "--features",
        str(args.features),
        "--evidently-rows",
        str(args.evidently_rows),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{which} worker failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k rows x 20 features")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--evidently-rows", type=int, default=None)
    parser.add_argument("--worker", choices=["inferwatch", "evidently"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rows is None:
        args.rows = 100_000 if args.quick else 1_000_000
    if args.features is None:
        args.features = 20 if args.quick else 100
    if args.evidently_rows is None:
        args.evidently_rows = args.rows
    if args.worker:
        _worker(args)
        return
    ours = _spawn("inferwatch", args)
    print(
        f"inferwatch: {ours['seconds']:.2f} s ({ours['reference_seconds']:.2f} reference, "
        f"{ours['ingest_seconds']:.2f} ingest, {ours['statistics_seconds']:.3f} statistics), "
        f"peak +{ours['peak_rss_delta_mib']:.0f} MiB, sketches {ours['sketch_bytes']} bytes, "
        f"{ours['drifted']} drifted (KS p<0.01), observe {ours['observe_us_per_row']:.2f} us/row",
        flush=True,
    )
    peer = _spawn("evidently", args)
    print(
        f"evidently:  {peer['seconds']:.2f} s on {peer['rows']} rows, "
        f"peak +{peer['peak_rss_delta_mib']:.0f} MiB, {peer['drifted']} drifted",
        flush=True,
    )
    same_rows = peer["rows"] == args.rows
    figures = {
        "rows": args.rows,
        "features": args.features,
        "shifted_features": len(range(0, args.features, SHIFT_EVERY)),
        "inferwatch_seconds": round(ours["seconds"], 3),
        "inferwatch_reference_seconds": round(ours["reference_seconds"], 3),
        "inferwatch_ingest_seconds": round(ours["ingest_seconds"], 3),
        "inferwatch_statistics_seconds": round(ours["statistics_seconds"], 4),
        "inferwatch_peak_rss_delta_mib": round(ours["peak_rss_delta_mib"], 1),
        "inferwatch_sketch_bytes": ours["sketch_bytes"],
        "inferwatch_drifted": ours["drifted"],
        "inferwatch_observe_us_per_row": round(ours["observe_us_per_row"], 3),
        "evidently_rows": peer["rows"],
        "evidently_seconds": round(peer["seconds"], 3),
        "evidently_peak_rss_delta_mib": round(peer["peak_rss_delta_mib"], 1),
        "evidently_drifted": peer["drifted"],
        "speedup": round(peer["seconds"] / ours["seconds"], 1) if same_rows else None,
        "evidently_subset": not same_rows,
        "memory": "ru_maxrss after the run minus ru_maxrss after data load and import",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""Primary latency and throughput with shadowing off and on (inferwatch.analyze.shadow).

The primary is a small two-layer numpy model (a batch of 32 rows through 256x256
weights). Three ways of serving it are interleaved in rotations in one run, so drift in
the machine's speed hits all alike:

- ``off``: the bare primary (the peer: no shadowing);
- ``on``: the primary under ``Shadow(sample_rate=1.0, queue_size=64)`` with a slow
  candidate that waits 20 ms per call, as one served elsewhere (a model server, a GPU)
  does, and answers from a table: the cost of the shadow machinery itself, where the
  goal is p99 within 5% of ``off``;
- ``on_compute``: the candidate runs the primary's numpy model in this process, then
  waits 20 ms: its own compute competes with the primary for the interpreter;
- ``on_cpu``: the candidate holds the GIL for 2 ms of pure-Python work per call.

The last two are for information: a candidate computing in the same process shares the
GIL with the primary, so with every call mirrored it shows in the primary's tail (the
queue bounds how much); give it ``sample_rate`` < 1 or run it in another process.

Each call is timed with ``perf_counter_ns`` in a closed loop on one thread; figures are
p50/p99 per call in microseconds and calls per second. The shadow's counts (handled and
dropped mirrors) show that the candidate really ran.

Usage: python bench/shadow.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

# One BLAS thread: the primary's latency should not depend on idle cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from inferwatch.analyze.shadow import Shadow  # noqa: E402

rng = np.random.default_rng(0)
W1 = rng.standard_normal((256, 256)) / 16
W2 = rng.standard_normal((256, 10)) / 16


def primary(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.argmax(np.tanh(x @ W1) @ W2, axis=1)
    return out


ANSWERS: dict[int, np.ndarray] = {}


def slow_candidate(x: np.ndarray) -> np.ndarray:
    time.sleep(0.02)
    return ANSWERS[id(x)]


def compute_candidate(x: np.ndarray) -> np.ndarray:
    out = primary(x)
    time.sleep(0.02)
    return out


def cpu_candidate(x: np.ndarray) -> np.ndarray:
    deadline = time.perf_counter() + 0.002
    while time.perf_counter() < deadline:  # pure Python: holds the GIL
        pass
    return primary(x)


def run(fn: Callable[[np.ndarray], Any], inputs: list[np.ndarray]) -> tuple[list[int], int]:
    latencies = []
    start = time.perf_counter_ns()
    for x in inputs:
        t0 = time.perf_counter_ns()
        fn(x)
        latencies.append(time.perf_counter_ns() - t0)
    return latencies, time.perf_counter_ns() - start


def summary(latencies: list[int], wall_ns: int) -> dict[str, float]:
    arr = np.array(latencies, dtype=float) / 1000.0
    return {
        "p50_us": round(float(np.percentile(arr, 50)), 2),
        "p99_us": round(float(np.percentile(arr, 99)), 2),
        "calls_per_s": round(len(latencies) / (wall_ns / 1e9), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run")
    args = parser.parse_args()
    rotations, calls = (6, 2000) if args.quick else (20, 5000)
    inputs = [rng.standard_normal((32, 256)) for _ in range(64)]
    ANSWERS.update((id(x), primary(x)) for x in inputs)
    batch = [inputs[i % len(inputs)] for i in range(calls)]

    # A queue of 64 keeps the drain between blocks short (64 x 20 ms).
    shadows = {
        mode: Shadow(candidate, model="bench", name=mode, sample_rate=1.0, queue_size=64)
        for mode, candidate in (
            ("on", slow_candidate),
            ("on_compute", compute_candidate),
            ("on_cpu", cpu_candidate),
        )
    }
    modes: dict[str, Callable[[np.ndarray], Any]] = {"off": primary}
    modes.update((mode, shadow(primary)) for mode, shadow in shadows.items())
    for fn in modes.values():  # warm up
        run(fn, batch[:200])
    for shadow in shadows.values():
        shadow.join(60)
    lat: dict[str, list[int]] = {m: [] for m in modes}
    wall: dict[str, int] = dict.fromkeys(modes, 0)
    order = list(modes)
    for r in range(rotations):
        for mode in order if r % 2 == 0 else order[::-1]:
            samples, ns = run(modes[mode], batch)
            lat[mode].extend(samples)
            wall[mode] += ns
            # Let the candidates drain between blocks, so each block starts alike.
            for shadow in shadows.values():
                shadow.join(60)
    results: dict[str, Any] = {"rotations": rotations, "calls_per_rotation": calls}
    for mode in modes:
        results[mode] = summary(lat[mode], wall[mode])
        print(f"{mode:10s} {results[mode]}")
    off = results["off"]
    for mode, shadow in shadows.items():
        results[f"{mode}_p50_vs_off"] = round(results[mode]["p50_us"] / off["p50_us"], 4)
        results[f"{mode}_p99_vs_off"] = round(results[mode]["p99_us"] / off["p99_us"], 4)
        results[f"{mode}_shadow_counts"] = shadow.counts()
        shadow.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()

"""Autoscaling advice replayed on a real traffic trace, beside an HPA-style policy.

The trace is the ELB request count of NAB's ``realAWSCloudwatch`` corpus (requests per
5 minutes for 14 days), interpolated to one value a minute and scaled by ``--scale`` to
requests per second. It drives a simulated model service:

- each replica serves ``MU`` requests/s (exponential service, 20 ms mean); load is spread
  evenly, and a replica's p99 latency is the M/M/1 sojourn quantile ``ln(100) / (MU - l)``
  (infinite at or past saturation); the objective is p99 <= ``OBJECTIVE_S``;
- a new replica serves only ``STARTUP_MIN`` minutes after it was asked for; removed
  replicas go at once;
- every minute each policy sees the previous minute's request rate and the replicas
  asked for, and sets the replicas for the next minute.

Policies, in one run on the same trace:

- ``hpa`` (the peer): Kubernetes HPA's rule on utilisation ``rate / (replicas * MU)``
  with target ``HPA_TARGET``, tolerance 0.1, scale-up at once, scale-down to the highest
  recommendation of the last 5 minutes (its default stabilisation window);
- ``ours``: :class:`inferwatch.analyze.scaling.ReplicaAdvisor` with the capacity at the
  objective (``MU - ln(100)/OBJECTIVE_S``) and ``target_utilization`` chosen so that it
  plans the same per-replica load as the HPA target (same headroom), predictive with a
  10-minute horizon (daily profile learned online, no look-ahead);
- ``ours_reactive``: the same with prediction off, to show what the forecast adds;
- ``hpa_same_cost``: the HPA with its target lowered (by bisection) until it spends no
  more replica-hours than ``ours``: the violations of both at the same cost.

Figures per policy: objective violations (minutes with p99 over the objective),
replica-hours, the peak replicas and the number of scaling changes.

Usage: python bench/scaling.py [--quick] [--scale 2.0]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from inferwatch.analyze.scaling import ReplicaAdvisor, ScalingPolicy, ScalingSignals

TRACE = Path(__file__).resolve().parents[2] / "shared/data/nab/data/realAWSCloudwatch"
FILE = "elb_request_count_8c0756.csv"
MU = 50.0
OBJECTIVE_S = 0.3
STARTUP_MIN = 3
HPA_TARGET = 0.6
MAX_REPLICAS = 200


def load_trace(path: Path, scale: float) -> tuple[list[float], list[float]]:
    """Times (s) and requests/s, one a minute, interpolated between the 5-minute counts."""
    points: list[tuple[float, float]] = []
    with path.open() as f:
        for row in csv.DictReader(f):
            t = datetime.fromisoformat(row["timestamp"]).timestamp()
            points.append((t, float(row["value"]) * scale))
    times: list[float] = []
    rates: list[float] = []
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        t = t0
        while t < t1:
            times.append(t)
            rates.append(v0 + (v1 - v0) * (t - t0) / (t1 - t0))
            t += 60.0
    return times, rates


def p99_latency(rate: float, ready: int) -> float:
    if ready <= 0:
        return math.inf if rate > 0 else 0.0
    per = rate / ready
    return math.inf if per >= MU else math.log(100) / (MU - per)


def hpa_policy(target: float = HPA_TARGET) -> Callable[[float, float, int], int]:
    history: deque[tuple[float, int]] = deque()

    def decide(t: float, rate: float, spec: int) -> int:
        util = rate / (max(spec, 1) * MU)
        ratio = util / target
        desired = spec if abs(ratio - 1) <= 0.1 else math.ceil(spec * ratio)
        desired = min(max(desired, 1), MAX_REPLICAS)
        history.append((t, desired))
        while history[0][0] < t - 300:
            history.popleft()
        if desired < spec:
            return max(d for _, d in history)
        return desired

    return decide


def advisor_policy(horizon_s: float) -> Callable[[float, float, int], int]:
    capacity = MU - math.log(100) / OBJECTIVE_S
    policy = ScalingPolicy(
        min_replicas=1,
        max_replicas=MAX_REPLICAS,
        capacity_rps=capacity,
        target_utilization=min(1.0, HPA_TARGET * MU / capacity),
        scale_up_cooldown_s=0.0,
        horizon_s=horizon_s,
    )
    advisor = ReplicaAdvisor(policy, clock=lambda: 0.0)

    def decide(t: float, rate: float, spec: int) -> int:
        return advisor.update(ScalingSignals(request_rate=rate, current_replicas=spec), t).replicas

    return decide


def simulate(
    decide: Callable[[float, float, int], int], times: list[float], rates: list[float]
) -> dict[str, float]:
    spec = 1
    ready_at: list[int] = [0]  # minute index from which each replica serves
    violations = 0
    replica_minutes = 0
    changes = 0
    peak = spec
    started = time.perf_counter()
    for i in range(1, len(times)):
        new = decide(times[i], rates[i - 1], spec)
        if new != spec:
            changes += 1
            if new > spec:
                ready_at.extend([i + STARTUP_MIN] * (new - spec))
            else:
                ready_at.sort()
                del ready_at[new:]  # the newest (not yet ready) go first
            spec = new
        peak = max(peak, spec)
        ready = sum(1 for r in ready_at if r <= i)
        if p99_latency(rates[i], ready) > OBJECTIVE_S:
            violations += 1
        replica_minutes += spec
    elapsed = time.perf_counter() - started
    return {
        "violation_minutes": violations,
        "replica_hours": round(replica_minutes / 60, 1),
        "peak_replicas": peak,
        "scaling_changes": changes,
        "decision_us": round(elapsed / max(len(times) - 1, 1) * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="first 5 days of the trace")
    parser.add_argument("--scale", type=float, default=2.0, help="requests/s per trace count")
    args = parser.parse_args()
    times, rates = load_trace(TRACE / FILE, args.scale)
    if args.quick:
        times, rates = times[: 5 * 1440], rates[: 5 * 1440]
    results: dict[str, object] = {
        "trace": FILE,
        "minutes": len(times),
        "scale": args.scale,
        "mean_rps": round(sum(rates) / len(rates), 1),
        "peak_rps": round(max(rates), 1),
        "objective_p99_s": OBJECTIVE_S,
        "startup_min": STARTUP_MIN,
    }
    for name, decide in (
        ("hpa", hpa_policy()),
        ("ours", advisor_policy(600.0)),
        ("ours_reactive", advisor_policy(0.0)),
    ):
        figures = simulate(decide, times, rates)
        for key, value in figures.items():
            results[f"{name}_{key}"] = value
        print(f"{name:>14}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    # The HPA with a lower target, found by bisection, spends as many replica-hours as
    # ours: the violations of each at the same cost.
    budget = float(results["ours_replica_hours"])  # type: ignore[arg-type]
    lo, hi = 0.05, HPA_TARGET
    for _ in range(12):
        mid = (lo + hi) / 2
        if simulate(hpa_policy(mid), times, rates)["replica_hours"] > budget:
            lo = mid
        else:
            hi = mid
    figures = simulate(hpa_policy(hi), times, rates)
    results["hpa_same_cost_target"] = round(hi, 3)
    for key, value in figures.items():
        results[f"hpa_same_cost_{key}"] = value
    print(
        f"{'hpa_same_cost':>14}: target {hi:.3f}, "
        + ", ".join(f"{k} {v}" for k, v in figures.items())
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
